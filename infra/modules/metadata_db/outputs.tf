output "db_instance_identifier" {
  description = "Identifier of the RDS instance."
  value       = aws_db_instance.this.identifier
}

output "db_instance_arn" {
  description = "ARN of the RDS instance."
  value       = aws_db_instance.this.arn
}

output "db_instance_address" {
  description = "Host name of the database (private)."
  value       = aws_db_instance.this.address
}

output "db_instance_port" {
  description = "Port of the database."
  value       = aws_db_instance.this.port
}

output "db_instance_endpoint" {
  description = "host:port of the database."
  value       = aws_db_instance.this.endpoint
}

output "db_name" {
  description = "Database created with the instance (MLflow's backend store)."
  value       = aws_db_instance.this.db_name
}

output "db_username" {
  description = "Master user name (its password is in the secret below, never here)."
  value       = aws_db_instance.this.username
}

output "master_user_secret_arn" {
  description = "ARN of the Secrets Manager secret RDS keeps the master credentials in."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}
