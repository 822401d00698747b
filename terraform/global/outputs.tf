output "ecr_repository_url" {
  description = "Image repository URL (container_image in the environments, without the tag)."
  value       = aws_ecr_repository.app.repository_url
}

output "image_role_arn" {
  description = "GitHub repository variable AWS_IMAGE_ROLE_ARN."
  value       = aws_iam_role.image.arn
}

output "deploy_role_arn" {
  description = "GitHub repository variable AWS_DEPLOY_ROLE_ARN."
  value       = aws_iam_role.deploy.arn
}
