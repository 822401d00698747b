variable "region" {
  description = "AWS region of the environment."
  type        = string
  default     = "us-east-1"
}

variable "container_image" {
  description = "Image the task definitions are created with (ECR URI with tag). Later deploys come from CI."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate for HTTPS; empty serves plain HTTP on port 80."
  type        = string
  default     = ""
}

variable "alarm_email" {
  description = "Who receives CloudWatch alarms (empty: nobody subscribed)."
  type        = string
  default     = ""
}

variable "from_email" {
  description = "Sender address of notification emails (FROM_EMAIL)."
  type        = string
}

variable "cors_allowed_origins" {
  description = "Browser origins allowed to call the API and fetch files."
  type        = list(string)
  default     = []
}

variable "signup_enabled" {
  description = "Allow public tenant sign-up (SIGNUP_ENABLED)."
  type        = bool
  default     = true
}

variable "rust_log" {
  description = "tracing filter (RUST_LOG)."
  type        = string
  default     = "info"
}
