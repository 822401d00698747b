terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

# The API publishes email notifications to this topic (SNS_EMAIL_TOPIC_ARN). SMS and
# push go straight to phone numbers and platform endpoints and need no topic.
resource "aws_sns_topic" "email" {
  name              = "${var.name}-email"
  display_name      = "tenantry email notifications"
  kms_master_key_id = var.kms_master_key_id
  tags              = var.tags
}

# Failed deliveries to the email consumers land here instead of being dropped.
resource "aws_sqs_queue" "email_dlq" {
  name                      = "${var.name}-email-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

resource "aws_sns_topic_subscription" "email" {
  for_each  = var.email_subscribers
  topic_arn = aws_sns_topic.email.arn
  protocol  = each.value.protocol
  endpoint  = each.value.endpoint
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.email_dlq.arn
  })
}

data "aws_iam_policy_document" "email_dlq" {
  statement {
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.email_dlq.arn]
    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_sns_topic.email.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "email_dlq" {
  queue_url = aws_sqs_queue.email_dlq.id
  policy    = data.aws_iam_policy_document.email_dlq.json
}
