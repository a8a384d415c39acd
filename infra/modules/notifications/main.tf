################################################################################
# SNS topic of the stack's notifications (`pipeline notify`, the monitor's events, a failed run)
################################################################################

resource "aws_sns_topic" "this" {
  name              = var.name
  display_name      = var.display_name
  kms_master_key_id = var.kms_master_key_id

  tags = var.tags
}

################################################################################
# Optional email subscription (AWS sends a confirmation message first)
################################################################################

resource "aws_sns_topic_subscription" "email" {
  count = var.email == null ? 0 : 1

  topic_arn = aws_sns_topic.this.arn
  protocol  = "email"
  endpoint  = var.email
}
