variable "name" {
  description = "Name prefix; secrets are named <name>/<secret>."
  type        = string
}

variable "recovery_window_in_days" {
  description = "Days a deleted secret can be restored (0 deletes at once, for throwaway environments)."
  type        = number
  default     = 30
}

variable "kms_key_id" {
  description = "KMS key for the secrets; null uses the account's aws/secretsmanager key."
  type        = string
  default     = null
}

variable "db_username" {
  description = "Database master user name, used in DATABASE_URL."
  type        = string
}

variable "db_name" {
  description = "Database name, used in DATABASE_URL."
  type        = string
}

variable "db_address" {
  description = "Database host name."
  type        = string
}

variable "db_port" {
  description = "Database port."
  type        = number
  default     = 5432
}

variable "redis_address" {
  description = "Redis primary endpoint host name."
  type        = string
}

variable "redis_port" {
  description = "Redis port."
  type        = number
  default     = 6379
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
