output "db_password" {
  description = "Generated database master password (for the database module)."
  value       = aws_secretsmanager_secret_version.db_password.secret_string
  sensitive   = true
}

output "redis_auth_token" {
  description = "Generated Redis AUTH token (for the cache module)."
  value       = aws_secretsmanager_secret_version.redis_auth_token.secret_string
  sensitive   = true
}

output "database_url_secret_arn" {
  description = "ARN of the DATABASE_URL secret."
  value       = aws_secretsmanager_secret.database_url.arn
}

output "redis_url_secret_arn" {
  description = "ARN of the REDIS_URL secret."
  value       = aws_secretsmanager_secret.redis_url.arn
}

output "jwt_private_key_secret_arn" {
  description = "ARN of the JWT private key secret (value set out of band)."
  value       = aws_secretsmanager_secret.jwt_private_key.arn
}

output "jwt_private_key_secret_name" {
  description = "Name of the JWT private key secret, for put-secret-value."
  value       = aws_secretsmanager_secret.jwt_private_key.name
}

output "mfa_encryption_key_secret_arn" {
  description = "ARN of the MFA_ENCRYPTION_KEY secret."
  value       = aws_secretsmanager_secret.mfa_encryption_key.arn
}
