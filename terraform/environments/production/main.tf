# Production: Multi-AZ database and Redis, a NAT gateway per AZ, HTTPS only, deletion protection.
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

data "aws_caller_identity" "current" {}

locals {
  name = "tenantry-production"

  # Empty values are left out so the app applies its own defaults.
  app_environment = {
    for k, v in {
      APP_ENV                  = "production"
      LOG_FORMAT               = "json"
      RUST_LOG                 = var.rust_log
      AWS_REGION               = var.region
      STORAGE_BACKEND          = "s3"
      S3_BUCKET_NAME           = module.storage.bucket_name
      NOTIFICATIONS_BACKEND    = "sns"
      SNS_EMAIL_TOPIC_ARN      = module.messaging.email_topic_arn
      FROM_EMAIL               = var.from_email
      SIGNUP_ENABLED           = tostring(var.signup_enabled)
      CORS_ALLOWED_ORIGINS     = join(",", var.cors_allowed_origins)
      DATABASE_MAX_CONNECTIONS = "20"
    } : k => v if v != ""
  }
}

module "network" {
  source = "../../modules/network"

  name                    = local.name
  cidr_block              = "10.30.0.0/16"
  az_count                = 2
  single_nat_gateway      = false
  flow_log_retention_days = 90
}

module "secrets" {
  source = "../../modules/secrets"

  name                    = local.name
  recovery_window_in_days = 30
  db_username             = "tenantry"
  db_name                 = "tenantry"
  db_address              = module.database.address
  db_port                 = module.database.port
  redis_address           = module.cache.primary_endpoint_address
  redis_port              = module.cache.port
}

module "database" {
  source = "../../modules/database"

  name                         = local.name
  subnet_ids                   = module.network.private_subnet_ids
  security_group_id            = module.network.db_security_group_id
  instance_class               = "db.m6g.large"
  allocated_storage            = 100
  max_allocated_storage        = 1000
  multi_az                     = true
  db_name                      = "tenantry"
  username                     = "tenantry"
  password                     = module.secrets.db_password
  backup_retention_days        = 14
  deletion_protection          = true
  performance_insights_enabled = true
  monitoring_interval          = 60
}

module "cache" {
  source = "../../modules/cache"

  name                     = local.name
  subnet_ids               = module.network.private_subnet_ids
  security_group_id        = module.network.cache_security_group_id
  node_type                = "cache.m6g.large"
  num_cache_clusters       = 2
  auth_token               = module.secrets.redis_auth_token
  snapshot_retention_limit = 7
}

module "storage" {
  source = "../../modules/storage"

  bucket_name                        = "${local.name}-files-${data.aws_caller_identity.current.account_id}"
  force_destroy                      = false
  noncurrent_version_expiration_days = 90
  cors_allowed_origins               = var.cors_allowed_origins
}

module "messaging" {
  source = "../../modules/messaging"

  name = local.name
}

module "compute" {
  source = "../../modules/compute"

  name                       = local.name
  vpc_id                     = module.network.vpc_id
  public_subnet_ids          = module.network.public_subnet_ids
  private_subnet_ids         = module.network.private_subnet_ids
  alb_security_group_id      = module.network.alb_security_group_id
  app_security_group_id      = module.network.app_security_group_id
  container_image            = var.container_image
  certificate_arn            = var.certificate_arn
  environment                = local.app_environment
  jwt_private_key_secret_arn = module.secrets.jwt_private_key_secret_arn
  log_group_name             = module.monitoring.log_group_name
  files_bucket_arn           = module.storage.bucket_arn
  sns_topic_arns             = module.messaging.topic_arns
  container_insights         = true
  waf_enabled                = true
  deletion_protection        = true

  secrets = {
    DATABASE_URL = module.secrets.database_url_secret_arn
    REDIS_URL    = module.secrets.redis_url_secret_arn
  }

  api    = { cpu = 1024, memory = 2048, min_count = 3, max_count = 12 }
  worker = { cpu = 1024, memory = 2048, min_count = 2, max_count = 8 }
}

module "monitoring" {
  source = "../../modules/monitoring"

  name                          = local.name
  log_retention_days            = 90
  alarm_email                   = var.alarm_email
  cluster_name                  = module.compute.cluster_name
  api_service_name              = module.compute.api_service_name
  worker_service_name           = module.compute.worker_service_name
  alb_arn_suffix                = module.compute.alb_arn_suffix
  target_group_arn_suffix       = module.compute.target_group_arn_suffix
  db_instance_id                = module.database.instance_id
  cache_cluster_ids             = module.cache.member_cluster_ids
  http_5xx_threshold            = 50
  latency_p99_threshold_seconds = 1
}
