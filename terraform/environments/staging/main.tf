# Staging: production's shape (two API tasks, Redis replica, HTTPS) at small sizes.
# The resources are defined in modules/stack; this file picks the sizes and flags.
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }

  # Partial configuration: the state bucket, region and lock table come from
  #   terraform init -backend-config=backend.hcl
  # with backend.hcl holding bucket = "...", region = "...", dynamodb_table = "...".
  backend "s3" {
    key     = "tenantry/staging/terraform.tfstate"
    encrypt = true
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = {
      Project     = "tenantry"
      Environment = "staging"
      ManagedBy   = "terraform"
    }
  }
}

module "stack" {
  source = "../../modules/stack"

  environment          = "staging"
  region               = var.region
  container_image      = var.container_image
  certificate_arn      = var.certificate_arn
  alarm_email          = var.alarm_email
  from_email           = var.from_email
  cors_allowed_origins = var.cors_allowed_origins
  signup_enabled       = var.signup_enabled
  rust_log             = var.rust_log

  deletion_protection = false

  vpc_cidr                = "10.20.0.0/16"
  single_nat_gateway      = true
  flow_log_retention_days = 14

  secret_recovery_window_days = 7

  db_instance_class               = "db.t4g.small"
  db_allocated_storage            = 20
  db_max_allocated_storage        = 100
  db_multi_az                     = false
  db_backup_retention_days        = 7
  db_performance_insights_enabled = false
  db_monitoring_interval          = 60
  db_max_connections              = 15

  cache_node_type                = "cache.t4g.small"
  cache_num_clusters             = 2
  cache_snapshot_retention_limit = 1

  files_force_destroy                      = false
  files_noncurrent_version_expiration_days = 30

  container_insights = true
  waf_enabled        = true
  api                = { cpu = 512, memory = 1024, min_count = 2, max_count = 4 }
  worker             = { cpu = 512, memory = 1024, min_count = 1, max_count = 3 }

  log_retention_days            = 30
  http_5xx_threshold            = 25
  latency_p99_threshold_seconds = 1
}
