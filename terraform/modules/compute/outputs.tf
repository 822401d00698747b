output "cluster_name" {
  description = "ECS cluster name."
  value       = aws_ecs_cluster.this.name
}

output "api_service_name" {
  description = "ECS service of the API."
  value       = aws_ecs_service.api.name
}

output "worker_service_name" {
  description = "ECS service of the worker."
  value       = aws_ecs_service.worker.name
}

output "task_definition_families" {
  description = "Task definition families (deploys register new revisions of these)."
  value       = { for k, td in aws_ecs_task_definition.this : k => td.family }
}

output "alb_dns_name" {
  description = "DNS name of the load balancer (point the API's domain at it)."
  value       = aws_lb.this.dns_name
}

output "alb_zone_id" {
  description = "Route 53 zone id of the load balancer, for an alias record."
  value       = aws_lb.this.zone_id
}

output "alb_arn_suffix" {
  description = "ARN suffix of the load balancer (CloudWatch dimension)."
  value       = aws_lb.this.arn_suffix
}

output "target_group_arn_suffix" {
  description = "ARN suffix of the API target group (CloudWatch dimension)."
  value       = aws_lb_target_group.api.arn_suffix
}

output "task_role_arn" {
  description = "IAM role of the application."
  value       = aws_iam_role.task.arn
}

output "execution_role_arn" {
  description = "IAM role ECS uses to start the tasks."
  value       = aws_iam_role.execution.arn
}
