output "email_topic_arn" {
  description = "ARN of the email notifications topic (SNS_EMAIL_TOPIC_ARN)."
  value       = aws_sns_topic.email.arn
}

output "topic_arns" {
  description = "Every topic the app publishes to."
  value       = [aws_sns_topic.email.arn]
}

output "email_dlq_arn" {
  description = "Dead-letter queue of failed email deliveries."
  value       = aws_sqs_queue.email_dlq.arn
}
