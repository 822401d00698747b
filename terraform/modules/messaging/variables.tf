variable "name" {
  description = "Name prefix of the topics."
  type        = string
}

variable "kms_master_key_id" {
  description = "KMS key for server-side encryption of the topics."
  type        = string
  default     = "alias/aws/sns"
}

variable "email_subscribers" {
  description = "Map of name => {protocol, endpoint} for the consumers that deliver email (e.g. an SQS queue or Lambda in front of SES)."
  type = map(object({
    protocol = string
    endpoint = string
  }))
  default = {}
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
