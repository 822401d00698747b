# Production: Multi-AZ database and Redis, a NAT gateway per AZ, HTTPS only, deletion protection.
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
    key     = "tenantry/production/terraform.tfstate"
    encrypt = true
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = {
      Project     = "tenantry"
      Environment = "production"
      ManagedBy   = "terraform"
    }
  }
}

module "stack" {
  source = "../../modules/stack"

  environment          = "production"
  region               = var.region
  container_image      = var.container_image
  certificate_arn      = var.certificate_arn
  alarm_email          = var.alarm_email
  from_email           = var.from_email
  cors_allowed_origins = var.cors_allowed_origins
  signup_enabled       = var.signup_enabled
  rust_log             = var.rust_log

  deletion_protection = true

  vpc_cidr                = "10.30.0.0/16"
  single_nat_gateway      = false
  flow_log_retention_days = 90

  secret_recovery_window_days = 30

  db_instance_class               = "db.m6g.large"
  db_allocated_storage            = 100
  db_max_allocated_storage        = 1000
  db_multi_az                     = true
  db_backup_retention_days        = 14
  db_performance_insights_enabled = true
  db_monitoring_interval          = 60
  db_max_connections              = 20

  cache_node_type                = "cache.m6g.large"
  cache_num_clusters             = 2
  cache_snapshot_retention_limit = 7

  files_force_destroy                      = false
  files_noncurrent_version_expiration_days = 90

  container_insights = true
  waf_enabled        = true
  api                = { cpu = 1024, memory = 2048, min_count = 3, max_count = 12 }
  worker             = { cpu = 1024, memory = 2048, min_count = 2, max_count = 8 }

  log_retention_days            = 90
  http_5xx_threshold            = 50
  latency_p99_threshold_seconds = 1
}
