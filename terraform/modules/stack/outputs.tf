output "api_url" {
  description = "Base URL of the API (use your own domain pointed at alb_dns_name in practice)."
  value       = "${var.certificate_arn == "" ? "http" : "https"}://${module.compute.alb_dns_name}"
}

output "docs_url" {
  description = "Swagger UI of the API; the OpenAPI document is at /openapi.json."
  value       = "${var.certificate_arn == "" ? "http" : "https"}://${module.compute.alb_dns_name}/docs"
}

output "dashboard_url" {
  description = "CloudWatch dashboard in the AWS console."
  value       = "https://${var.region}.console.aws.amazon.com/cloudwatch/home?region=${var.region}#dashboards:name=${module.monitoring.dashboard_name}"
}

output "redis_key_prefix" {
  description = "REDIS_KEY_PREFIX of this environment, also the Deployment dimension of Tenantry/JobsQueueDepth."
  value       = "${local.name}:"
}

output "alb_dns_name" {
  description = "DNS name of the load balancer."
  value       = module.compute.alb_dns_name
}

output "alb_zone_id" {
  description = "Route 53 zone id of the load balancer, for an alias record."
  value       = module.compute.alb_zone_id
}

output "ecs_cluster_name" {
  description = "ECS cluster (deploy workflow: ECS_CLUSTER)."
  value       = module.compute.cluster_name
}

output "ecs_services" {
  description = "ECS services of the API and the worker."
  value = {
    api    = module.compute.api_service_name
    worker = module.compute.worker_service_name
  }
}

output "task_definition_families" {
  description = "Task definition families the deploy workflow registers revisions of."
  value       = module.compute.task_definition_families
}

output "files_bucket" {
  description = "S3 bucket for tenant files."
  value       = module.storage.bucket_name
}

output "email_topic_arn" {
  description = "SNS topic for email notifications."
  value       = module.messaging.email_topic_arn
}

output "database_address" {
  description = "Host name of the PostgreSQL instance (private)."
  value       = module.database.address
}

output "jwt_private_key_secret_name" {
  description = "Put the PEM signing key here before the first deploy."
  value       = module.secrets.jwt_private_key_secret_name
}

output "dashboard_name" {
  description = "CloudWatch dashboard."
  value       = module.monitoring.dashboard_name
}

output "alarm_topic_arn" {
  description = "SNS topic the alarms notify."
  value       = module.monitoring.alarm_topic_arn
}
