variable "bucket_name" {
  description = "Globally unique name of the bucket for tenant files."
  type        = string
}

variable "force_destroy" {
  description = "Allow destroying the bucket with objects in it (throwaway environments only)."
  type        = bool
  default     = false
}

variable "noncurrent_version_expiration_days" {
  description = "Days before overwritten or deleted object versions are removed for good."
  type        = number
  default     = 90
}

variable "cors_allowed_origins" {
  description = "Browser origins allowed to GET files through presigned URLs; empty adds no CORS rule."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
