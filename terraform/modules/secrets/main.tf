terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

# Generated credentials. The data source returns a fresh value on every plan, so each
# version ignores later changes to secret_string: the first value is kept in the secret
# and in state, and everything built from it (RDS, ElastiCache, the URLs) stays stable.
# Alphanumeric only, so the values need no escaping inside a URL.
data "aws_secretsmanager_random_password" "db" {
  password_length     = 40
  exclude_punctuation = true
}

data "aws_secretsmanager_random_password" "redis" {
  password_length     = 64
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret" "db_password" {
  # checkov:skip=CKV2_AWS_57: rotation needs a rotation Lambda and a rolling restart of the tasks; rotate by hand for now
  name                    = "${var.name}/db-password"
  description             = "Master password of the tenantry PostgreSQL database"
  kms_key_id              = var.kms_key_id
  recovery_window_in_days = var.recovery_window_in_days
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "db_password" {
  secret_id     = aws_secretsmanager_secret.db_password.id
  secret_string = data.aws_secretsmanager_random_password.db.random_password

  lifecycle {
    ignore_changes = [secret_string]
  }
}

resource "aws_secretsmanager_secret" "redis_auth_token" {
  # checkov:skip=CKV2_AWS_57: rotation needs a rotation Lambda and a rolling restart of the tasks; rotate by hand for now
  name                    = "${var.name}/redis-auth-token"
  description             = "AUTH token of the tenantry Redis replication group"
  kms_key_id              = var.kms_key_id
  recovery_window_in_days = var.recovery_window_in_days
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "redis_auth_token" {
  secret_id     = aws_secretsmanager_secret.redis_auth_token.id
  secret_string = data.aws_secretsmanager_random_password.redis.random_password

  lifecycle {
    ignore_changes = [secret_string]
  }
}

# What the containers read (ECS injects them as environment variables).

resource "aws_secretsmanager_secret" "database_url" {
  # checkov:skip=CKV2_AWS_57: rotation needs a rotation Lambda and a rolling restart of the tasks; rotate by hand for now
  name                    = "${var.name}/database-url"
  description             = "DATABASE_URL for tenantry (TLS required)"
  kms_key_id              = var.kms_key_id
  recovery_window_in_days = var.recovery_window_in_days
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "database_url" {
  secret_id     = aws_secretsmanager_secret.database_url.id
  secret_string = "postgres://${var.db_username}:${aws_secretsmanager_secret_version.db_password.secret_string}@${var.db_address}:${var.db_port}/${var.db_name}?sslmode=require"
}

resource "aws_secretsmanager_secret" "redis_url" {
  # checkov:skip=CKV2_AWS_57: rotation needs a rotation Lambda and a rolling restart of the tasks; rotate by hand for now
  name                    = "${var.name}/redis-url"
  description             = "REDIS_URL for tenantry (rediss:// with the AUTH token)"
  kms_key_id              = var.kms_key_id
  recovery_window_in_days = var.recovery_window_in_days
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "redis_url" {
  secret_id     = aws_secretsmanager_secret.redis_url.id
  secret_string = "rediss://:${aws_secretsmanager_secret_version.redis_auth_token.secret_string}@${var.redis_address}:${var.redis_port}/0"
}

# The JWT signing key is created outside Terraform so that it never lands in state:
#   openssl genpkey -algorithm ed25519 -out jwt.pem   (or an RSA key, whichever the app signs with)
#   aws secretsmanager put-secret-value --secret-id <name>/jwt-private-key --secret-string file://jwt.pem
# Tasks fail to start until it has a value, which is the safe failure.
resource "aws_secretsmanager_secret" "jwt_private_key" {
  # checkov:skip=CKV2_AWS_57: rotation needs a rotation Lambda and a rolling restart of the tasks; rotate by hand for now
  name                    = "${var.name}/jwt-private-key"
  description             = "PEM private key that signs tenantry access tokens"
  kms_key_id              = var.kms_key_id
  recovery_window_in_days = var.recovery_window_in_days
  tags                    = var.tags
}

# MFA_ENCRYPTION_KEY: 32 bytes in base64 that seal users' TOTP secrets. Generated once
# (32 alphanumeric characters, ~190 bits) and kept like the passwords above.
data "aws_secretsmanager_random_password" "mfa_key" {
  password_length     = 32
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret" "mfa_encryption_key" {
  # checkov:skip=CKV2_AWS_57: a new key cannot open the sealed secrets; rotating it means re-enrolling users
  name                    = "${var.name}/mfa-encryption-key"
  description             = "MFA_ENCRYPTION_KEY for tenantry (seals TOTP secrets)"
  kms_key_id              = var.kms_key_id
  recovery_window_in_days = var.recovery_window_in_days
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "mfa_encryption_key" {
  secret_id     = aws_secretsmanager_secret.mfa_encryption_key.id
  secret_string = base64encode(data.aws_secretsmanager_random_password.mfa_key.random_password)

  lifecycle {
    ignore_changes = [secret_string]
  }
}
