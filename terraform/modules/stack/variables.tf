# Application settings, passed through from the environment's own variables.

variable "environment" {
  description = "Environment name (dev, staging, production); resources are named tenantry-<environment>."
  type        = string
}

variable "region" {
  description = "AWS region of the environment (AWS_REGION of the app)."
  type        = string
}

variable "container_image" {
  description = "Image the task definitions are created with (ECR URI with tag). Later deploys come from CI."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate for HTTPS; empty serves plain HTTP on port 80."
  type        = string
}

variable "alarm_email" {
  description = "Who receives CloudWatch alarms (empty: nobody subscribed)."
  type        = string
}

variable "from_email" {
  description = "Sender address of notification emails (FROM_EMAIL)."
  type        = string
}

variable "cors_allowed_origins" {
  description = "Browser origins allowed to call the API and fetch files."
  type        = list(string)
}

variable "signup_enabled" {
  description = "Allow public tenant sign-up (SIGNUP_ENABLED)."
  type        = bool
}

variable "rust_log" {
  description = "tracing filter (RUST_LOG)."
  type        = string
}

# Sizes and flags: what sets the environments apart.

variable "deletion_protection" {
  description = "Protect the database and the load balancer from deletion."
  type        = bool
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all AZs (cheaper) instead of one per AZ."
  type        = bool
}

variable "flow_log_retention_days" {
  description = "Retention of the VPC flow logs."
  type        = number
}

variable "secret_recovery_window_days" {
  description = "Recovery window of deleted Secrets Manager secrets (0: delete at once)."
  type        = number
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
}

variable "db_allocated_storage" {
  description = "Initial storage of the database in GiB."
  type        = number
}

variable "db_max_allocated_storage" {
  description = "Upper limit of storage autoscaling in GiB."
  type        = number
}

variable "db_multi_az" {
  description = "Run a standby database in a second AZ."
  type        = bool
}

variable "db_backup_retention_days" {
  description = "Days automated database backups are kept."
  type        = number
}

variable "db_performance_insights_enabled" {
  description = "Enable RDS Performance Insights."
  type        = bool
}

variable "db_monitoring_interval" {
  description = "Seconds between RDS Enhanced Monitoring samples (0: off)."
  type        = number
}

variable "db_max_connections" {
  description = "Connection pool size of each app task (DATABASE_MAX_CONNECTIONS)."
  type        = number
}

variable "cache_node_type" {
  description = "ElastiCache node type."
  type        = string
}

variable "cache_num_clusters" {
  description = "Redis nodes: 1 is a single primary, 2 or more add replicas and automatic failover."
  type        = number
}

variable "cache_snapshot_retention_limit" {
  description = "Days Redis snapshots are kept (0: no snapshots)."
  type        = number
}

variable "files_force_destroy" {
  description = "Allow destroying the files bucket while it still holds objects."
  type        = bool
}

variable "files_noncurrent_version_expiration_days" {
  description = "Days old versions of tenant files are kept."
  type        = number
}

variable "container_insights" {
  description = "Enable CloudWatch Container Insights on the ECS cluster."
  type        = bool
}

variable "waf_enabled" {
  description = "Put a WAF web ACL in front of the load balancer."
  type        = bool
}

variable "api" {
  description = "Size and scaling of the API service."
  type = object({
    cpu       = number
    memory    = number
    min_count = number
    max_count = number
  })
}

variable "worker" {
  description = "Size and scaling of the worker service."
  type = object({
    cpu       = number
    memory    = number
    min_count = number
    max_count = number
    # Job backlog (ready jobs) above which a worker is added / below which one is removed.
    queue_high = optional(number)
    queue_low  = optional(number)
  })
}

variable "log_retention_days" {
  description = "Retention of the application log group."
  type        = number
}

variable "http_5xx_threshold" {
  description = "5xx responses (target + load balancer) per 5 minutes that raise the alarm."
  type        = number
}

variable "latency_p99_threshold_seconds" {
  description = "p99 target response time that raises the alarm."
  type        = number
}
