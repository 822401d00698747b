# Development: smallest sizes, one NAT gateway, no standby, everything deletable.
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
    key     = "tenantry/dev/terraform.tfstate"
    encrypt = true
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = {
      Project     = "tenantry"
      Environment = "dev"
      ManagedBy   = "terraform"
    }
  }
}

module "stack" {
  source = "../../modules/stack"

  environment          = "dev"
  region               = var.region
  container_image      = var.container_image
  certificate_arn      = var.certificate_arn
  alarm_email          = var.alarm_email
  from_email           = var.from_email
  cors_allowed_origins = var.cors_allowed_origins
  signup_enabled       = var.signup_enabled
  rust_log             = var.rust_log

  deletion_protection = false

  vpc_cidr                = "10.10.0.0/16"
  single_nat_gateway      = true
  flow_log_retention_days = 7

  secret_recovery_window_days = 0

  db_instance_class               = "db.t4g.micro"
  db_allocated_storage            = 20
  db_max_allocated_storage        = 50
  db_multi_az                     = false
  db_backup_retention_days        = 1
  db_performance_insights_enabled = false
  db_monitoring_interval          = 0
  db_max_connections              = 10

  cache_node_type                = "cache.t4g.micro"
  cache_num_clusters             = 1
  cache_snapshot_retention_limit = 0

  files_force_destroy                      = true
  files_noncurrent_version_expiration_days = 30

  container_insights = false
  waf_enabled        = false
  api                = { cpu = 256, memory = 512, min_count = 1, max_count = 2 }
  worker             = { cpu = 256, memory = 512, min_count = 1, max_count = 2 }

  log_retention_days            = 14
  http_5xx_threshold            = 25
  latency_p99_threshold_seconds = 2
}
