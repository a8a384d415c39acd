output "topic_arn" {
  description = "ARN of the notification topic (PIPELINE_NOTIFY_SNS_TOPIC)."
  value       = aws_sns_topic.this.arn
}

output "topic_name" {
  description = "Name of the notification topic."
  value       = aws_sns_topic.this.name
}

output "email_subscription_arn" {
  description = "ARN of the email subscription (pending until confirmed); null without an email."
  value       = one(aws_sns_topic_subscription.email[*].arn)
}
