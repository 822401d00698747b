variable "name" {
  description = "Name prefix of the log group, alarms and dashboard."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the application log group."
  type        = number
  default     = 30
}

variable "alarm_email" {
  description = "Address subscribed to the alarm topic; empty subscribes nobody."
  type        = string
  default     = ""
}

variable "cluster_name" {
  description = "ECS cluster name."
  type        = string
}

variable "api_service_name" {
  description = "ECS service name of the API."
  type        = string
}

variable "worker_service_name" {
  description = "ECS service name of the worker."
  type        = string
}

variable "alb_arn_suffix" {
  description = "ARN suffix of the load balancer (CloudWatch dimension LoadBalancer)."
  type        = string
}

variable "target_group_arn_suffix" {
  description = "ARN suffix of the API target group (CloudWatch dimension TargetGroup)."
  type        = string
}

variable "db_instance_id" {
  description = "RDS instance identifier."
  type        = string
}

variable "cache_cluster_ids" {
  description = "ElastiCache node ids of the Redis replication group."
  type        = list(string)
}

variable "http_5xx_threshold" {
  description = "5xx responses (target + load balancer) per 5 minutes that raise the alarm."
  type        = number
  default     = 25
}

variable "latency_p99_threshold_seconds" {
  description = "p99 target response time that raises the alarm."
  type        = number
  default     = 1
}

variable "cpu_threshold_percent" {
  description = "Average CPU of a service or the database that raises the alarm."
  type        = number
  default     = 80
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
