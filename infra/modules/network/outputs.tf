output "vpc_id" {
  description = "ID of the VPC the stack runs in."
  value       = local.vpc_id
}

output "public_subnet_ids" {
  description = "Public subnets, one per AZ; the tracking host runs in the first."
  value       = local.public_subnet_ids
}

output "private_subnet_ids" {
  description = "Private subnets without an internet route, for the database."
  value       = local.private_subnet_ids
}

output "host_security_group_id" {
  description = "Security group of the tracking host."
  value       = aws_security_group.host.id
}

output "db_security_group_id" {
  description = "Security group of the database; admits PostgreSQL from the host's group only."
  value       = aws_security_group.db.id
}

output "flow_log_group_name" {
  description = "CloudWatch log group of the VPC flow log, or null when none is created."
  value       = try(aws_cloudwatch_log_group.flow_log[0].name, null)
}

output "private_route_table_ids" {
  description = "Route tables of the private subnets this module creates (empty with create_vpc = false)."
  value       = aws_route_table.private[*].id
}

output "host_subnet_ids" {
  description = "Subnets for a host without a public address (outbound through the NAT gateway); empty when create_nat_gateway is false."
  value       = var.create_vpc ? aws_subnet.host[*].id : var.host_subnet_ids
}
