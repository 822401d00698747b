variable "region" {
  description = "Region of the image registry."
  type        = string
  default     = "us-east-1"
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose workflows may push images and deploy."
  type        = string
}

variable "ecr_repository_name" {
  description = "Name of the image repository."
  type        = string
  default     = "tenantry"
}

variable "deploy_environments" {
  description = "Environments the deploy role may update (GitHub environment name = Terraform environment)."
  type        = list(string)
  default     = ["staging", "production"]
}

variable "create_github_oidc_provider" {
  description = "Create the account's GitHub OIDC provider (false when it already exists)."
  type        = bool
  default     = true
}
