terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

resource "aws_elasticache_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

# Redis holds rate-limit counters, the job queues (apalis), the API-key deny-list and
# caches. TLS in transit means clients connect with rediss:// (the REDIS_URL secret).
resource "aws_elasticache_replication_group" "this" {
  # checkov:skip=CKV_AWS_191: encrypted at rest with the ElastiCache service key; the data is counters, queues and caches
  # checkov:skip=CKV2_AWS_50: failover and Multi-AZ are on whenever num_cache_clusters > 1 (staging, production)
  replication_group_id = var.name
  description          = "tenantry rate limits, job queues and caches"
  engine               = "redis"
  engine_version       = var.engine_version
  parameter_group_name = "default.redis7"
  node_type            = var.node_type
  port                 = 6379

  num_cache_clusters         = var.num_cache_clusters
  automatic_failover_enabled = var.num_cache_clusters > 1
  multi_az_enabled           = var.num_cache_clusters > 1

  subnet_group_name  = aws_elasticache_subnet_group.this.name
  security_group_ids = [var.security_group_id]

  at_rest_encryption_enabled = true
  transit_encryption_enabled = true
  auth_token                 = var.auth_token

  snapshot_retention_limit   = var.snapshot_retention_limit
  snapshot_window            = "02:00-03:00"
  maintenance_window         = "sun:05:30-sun:06:30"
  auto_minor_version_upgrade = true

  tags = var.tags
}
