# One environment of Tenantry: every module wired together. The environments under
# environments/ differ only in the sizes and flags they pass in (variables.tf).
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

data "aws_caller_identity" "current" {}

locals {
  name = "tenantry-${var.environment}"

  # Database and role the app connects as (the same in every environment).
  db_name     = "tenantry"
  db_username = "tenantry"

  # Empty values are left out so the app applies its own defaults.
  app_environment = {
    for k, v in {
      APP_ENV                  = "production"
      REDIS_KEY_PREFIX         = "${local.name}:"
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
      DATABASE_MAX_CONNECTIONS = tostring(var.db_max_connections)
      # Behind the ALB every request comes from a VPC address: the client is the
      # X-Forwarded-For entry the load balancer appended, not the balancer itself.
      TRUSTED_PROXIES = var.vpc_cidr
    } : k => v if v != ""
  }
}

module "network" {
  source = "../network"

  name                    = local.name
  cidr_block              = var.vpc_cidr
  az_count                = 2
  single_nat_gateway      = var.single_nat_gateway
  flow_log_retention_days = var.flow_log_retention_days
}

module "secrets" {
  source = "../secrets"

  name                    = local.name
  recovery_window_in_days = var.secret_recovery_window_days
  db_username             = local.db_username
  db_name                 = local.db_name
  db_address              = module.database.address
  db_port                 = module.database.port
  redis_address           = module.cache.primary_endpoint_address
  redis_port              = module.cache.port
}

module "database" {
  source = "../database"

  name                         = local.name
  subnet_ids                   = module.network.private_subnet_ids
  security_group_id            = module.network.db_security_group_id
  instance_class               = var.db_instance_class
  allocated_storage            = var.db_allocated_storage
  max_allocated_storage        = var.db_max_allocated_storage
  multi_az                     = var.db_multi_az
  db_name                      = local.db_name
  username                     = local.db_username
  password                     = module.secrets.db_password
  backup_retention_days        = var.db_backup_retention_days
  deletion_protection          = var.deletion_protection
  performance_insights_enabled = var.db_performance_insights_enabled
  monitoring_interval          = var.db_monitoring_interval
}

module "cache" {
  source = "../cache"

  name                     = local.name
  subnet_ids               = module.network.private_subnet_ids
  security_group_id        = module.network.cache_security_group_id
  node_type                = var.cache_node_type
  num_cache_clusters       = var.cache_num_clusters
  auth_token               = module.secrets.redis_auth_token
  snapshot_retention_limit = var.cache_snapshot_retention_limit
}

module "storage" {
  source = "../storage"

  bucket_name                        = "${local.name}-files-${data.aws_caller_identity.current.account_id}"
  force_destroy                      = var.files_force_destroy
  noncurrent_version_expiration_days = var.files_noncurrent_version_expiration_days
  cors_allowed_origins               = var.cors_allowed_origins
}

module "messaging" {
  source = "../messaging"

  name = local.name
}

module "compute" {
  source = "../compute"

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
  container_insights         = var.container_insights
  waf_enabled                = var.waf_enabled
  deletion_protection        = var.deletion_protection
  metrics_deployment         = local.name

  secrets = {
    DATABASE_URL       = module.secrets.database_url_secret_arn
    REDIS_URL          = module.secrets.redis_url_secret_arn
    MFA_ENCRYPTION_KEY = module.secrets.mfa_encryption_key_secret_arn
  }

  api    = var.api
  worker = var.worker
}

module "monitoring" {
  source = "../monitoring"

  name                          = local.name
  log_retention_days            = var.log_retention_days
  alarm_email                   = var.alarm_email
  cluster_name                  = module.compute.cluster_name
  api_service_name              = module.compute.api_service_name
  worker_service_name           = module.compute.worker_service_name
  alb_arn_suffix                = module.compute.alb_arn_suffix
  target_group_arn_suffix       = module.compute.target_group_arn_suffix
  db_instance_id                = module.database.instance_id
  cache_cluster_ids             = module.cache.member_cluster_ids
  http_5xx_threshold            = var.http_5xx_threshold
  latency_p99_threshold_seconds = var.latency_p99_threshold_seconds
}
