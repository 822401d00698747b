# Account-wide pieces the per-environment stacks and the GitHub workflows share: the
# image repository and the roles GitHub Actions assumes through OIDC (no stored keys).
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }

  # Partial configuration, see environments/*/main.tf.
  backend "s3" {
    key     = "tenantry/global/terraform.tfstate"
    encrypt = true
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = {
      Project   = "tenantry"
      ManagedBy = "terraform"
    }
  }
}

data "aws_caller_identity" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  oidc_arn = (var.create_github_oidc_provider
    ? aws_iam_openid_connect_provider.github[0].arn
  : "arn:aws:iam::${local.account_id}:oidc-provider/token.actions.githubusercontent.com")
}

# Tags: sha-<commit> for builds of main, v<version> for release tags. A re-run of the
# image workflow pushes the same tag again, hence MUTABLE.
resource "aws_ecr_repository" "app" {
  # checkov:skip=CKV_AWS_51: tags are unique per commit or release, but a re-run of the image workflow must be able to push the same tag again
  name                 = var.ecr_repository_name
  image_tag_mutability = "MUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
  }
}

resource "aws_ecr_lifecycle_policy" "app" {
  repository = aws_ecr_repository.app.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Expire untagged images after 14 days"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = 14
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the last 200 main-branch images; release (v*) images are kept for good"
        selection = {
          tagStatus     = "tagged"
          tagPrefixList = ["sha-"]
          countType     = "imageCountMoreThan"
          countNumber   = 200
        }
        action = { type = "expire" }
      },
    ]
  })
}

resource "aws_iam_openid_connect_provider" "github" {
  count           = var.create_github_oidc_provider ? 1 : 0
  url             = "https://token.actions.githubusercontent.com"
  client_id_list  = ["sts.amazonaws.com"]
  thumbprint_list = ["6938fd4d98bab03faadb97b34396831e3780aea1", "1c58a3a8518e8759bf075b76b750d4f2df264fcd"]
}

# ---- image role: .github/workflows/image.yml on main and v* tags ---------------------

data "aws_iam_policy_document" "image_assume" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [local.oidc_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "token.actions.githubusercontent.com:sub"
      values = [
        "repo:${var.github_repository}:ref:refs/heads/main",
        "repo:${var.github_repository}:ref:refs/tags/v*",
      ]
    }
  }
}

resource "aws_iam_role" "image" {
  name               = "tenantry-github-image"
  assume_role_policy = data.aws_iam_policy_document.image_assume.json
}

data "aws_iam_policy_document" "image" {
  statement {
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    actions = [
      "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage",
    ]
    resources = [aws_ecr_repository.app.arn]
  }
}

resource "aws_iam_role_policy" "image" {
  name   = "push-images"
  role   = aws_iam_role.image.id
  policy = data.aws_iam_policy_document.image.json
}

# ---- deploy role: .github/workflows/deploy.yml jobs bound to a GitHub environment ----

data "aws_iam_policy_document" "deploy_assume" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [local.oidc_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = [for env in var.deploy_environments : "repo:${var.github_repository}:environment:${env}"]
    }
  }
}

resource "aws_iam_role" "deploy" {
  name               = "tenantry-github-deploy"
  assume_role_policy = data.aws_iam_policy_document.deploy_assume.json
}

data "aws_iam_policy_document" "deploy" {
  # Task definitions have no resource-level permissions for these calls.
  statement {
    actions   = ["ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition", "ecs:ListTaskDefinitions"]
    resources = ["*"]
  }
  statement {
    actions = ["ecs:DescribeServices", "ecs:UpdateService"]
    resources = [for env in var.deploy_environments :
    "arn:aws:ecs:${var.region}:${local.account_id}:service/tenantry-${env}/*"]
  }
  statement {
    actions = ["ecs:RunTask"]
    resources = [for env in var.deploy_environments :
    "arn:aws:ecs:${var.region}:${local.account_id}:task-definition/tenantry-${env}-api:*"]
  }
  statement {
    actions = ["ecs:DescribeTasks"]
    resources = [for env in var.deploy_environments :
    "arn:aws:ecs:${var.region}:${local.account_id}:task/tenantry-${env}/*"]
  }
  statement {
    actions = ["iam:PassRole"]
    resources = flatten([for env in var.deploy_environments : [
      "arn:aws:iam::${local.account_id}:role/tenantry-${env}-task",
      "arn:aws:iam::${local.account_id}:role/tenantry-${env}-task-execution",
    ]])
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "deploy" {
  name   = "deploy-ecs"
  role   = aws_iam_role.deploy.id
  policy = data.aws_iam_policy_document.deploy.json
}
