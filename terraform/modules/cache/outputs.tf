output "primary_endpoint_address" {
  description = "Host name of the primary (writer) endpoint."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "port" {
  description = "Redis port."
  value       = aws_elasticache_replication_group.this.port
}

output "replication_group_id" {
  description = "Replication group id (CloudWatch dimension ReplicationGroupId)."
  value       = aws_elasticache_replication_group.this.id
}

output "member_cluster_ids" {
  description = "Cache cluster (node) ids (CloudWatch dimension CacheClusterId)."
  value       = sort(tolist(aws_elasticache_replication_group.this.member_clusters))
}
