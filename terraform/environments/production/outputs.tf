# Descriptions: modules/stack/outputs.tf.
output "api_url" {
  value = module.stack.api_url
}

output "docs_url" {
  value = module.stack.docs_url
}

output "dashboard_url" {
  value = module.stack.dashboard_url
}

output "redis_key_prefix" {
  value = module.stack.redis_key_prefix
}

output "alb_dns_name" {
  value = module.stack.alb_dns_name
}

output "alb_zone_id" {
  value = module.stack.alb_zone_id
}

output "ecs_cluster_name" {
  value = module.stack.ecs_cluster_name
}

output "ecs_services" {
  value = module.stack.ecs_services
}

output "task_definition_families" {
  value = module.stack.task_definition_families
}

output "files_bucket" {
  value = module.stack.files_bucket
}

output "email_topic_arn" {
  value = module.stack.email_topic_arn
}

output "database_address" {
  value = module.stack.database_address
}

output "jwt_private_key_secret_name" {
  value = module.stack.jwt_private_key_secret_name
}

output "dashboard_name" {
  value = module.stack.dashboard_name
}

output "alarm_topic_arn" {
  value = module.stack.alarm_topic_arn
}
