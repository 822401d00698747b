variable "name" {
  description = "Name prefix (cluster, services, task families, ALB)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the target group."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of the load balancer."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Subnets of the tasks."
  type        = list(string)
}

variable "alb_security_group_id" {
  description = "Security group of the load balancer."
  type        = string
}

variable "app_security_group_id" {
  description = "Security group of the tasks."
  type        = string
}

variable "container_image" {
  description = "Image the task definitions start with. Deploys register new revisions from CI, which Terraform then leaves alone."
  type        = string
}

variable "container_port" {
  description = "Port the API listens on (BIND_ADDR)."
  type        = number
  default     = 8000
}

variable "health_check_path" {
  description = "Target group health check path: readiness, 503 only without the database (Redis or storage down answers 200 \"degraded\")."
  type        = string
  default     = "/health/ready"
}

variable "certificate_arn" {
  description = "ACM certificate for the HTTPS listener; empty serves plain HTTP on port 80 (dev only)."
  type        = string
  default     = ""
}

variable "environment" {
  description = "Plain environment variables of both containers."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Environment variables filled from Secrets Manager: name => secret ARN."
  type        = map(string)
  default     = {}
}

variable "jwt_private_key_secret_arn" {
  description = "Secret holding the PEM signing key; written to a file for JWT_PRIVATE_KEY_FILE at start."
  type        = string
}

variable "log_group_name" {
  description = "CloudWatch log group of the containers."
  type        = string
}

variable "files_bucket_arn" {
  description = "S3 bucket the tasks read and write tenant files in."
  type        = string
}

variable "sns_topic_arns" {
  description = "SNS topics the tasks publish to."
  type        = list(string)
  default     = []
}

variable "api" {
  description = "Size and scaling of the API service."
  type = object({
    cpu                  = number
    memory               = number
    min_count            = number
    max_count            = number
    cpu_target           = optional(number, 60)
    requests_per_target  = optional(number, 1000)
    scale_in_cooldown_s  = optional(number, 300)
    scale_out_cooldown_s = optional(number, 60)
  })
}

variable "worker" {
  description = "Size and scaling of the worker service."
  type = object({
    cpu                  = number
    memory               = number
    min_count            = number
    max_count            = number
    cpu_target           = optional(number, 70)
    scale_in_cooldown_s  = optional(number, 300)
    scale_out_cooldown_s = optional(number, 60)
    # Step scaling on Tenantry/JobsQueueDepth (ready jobs waiting in Redis): add one
    # worker above queue_high, two above 4 x queue_high; remove one below queue_low.
    queue_high = optional(number, 100)
    queue_low  = optional(number, 10)
  })
}

variable "container_insights" {
  description = "Enable CloudWatch Container Insights on the cluster."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Protect the load balancer from deletion."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

variable "waf_enabled" {
  description = "Put an AWS WAF web ACL (managed rule groups + per-IP flood limit) in front of the ALB."
  type        = bool
  default     = true
}

variable "waf_rate_limit_per_ip" {
  description = "Requests per IP per 5 minutes above which WAF blocks (a flood guard; per-tenant limits live in the app)."
  type        = number
  default     = 6000
}

variable "waf_log_retention_days" {
  description = "Retention of the WAF log group."
  type        = number
  default     = 30
}

variable "metrics_deployment" {
  description = "Value of the Deployment dimension of the metrics the service publishes (its REDIS_KEY_PREFIX without the trailing colon)."
  type        = string
}

variable "metrics_port" {
  description = "Port of /metrics in the api and worker containers (METRICS_BIND_ADDR); reachable inside the VPC only, never routed by the load balancer."
  type        = number
  default     = 9100
}
