output "database_name" {
  description = "Name of the Glue database (Athena's default database for the named queries)."
  value       = aws_glue_catalog_database.this.name
}

output "table_names" {
  description = "Glue table names: users, events (the curated zone) and rejects."
  value       = concat(sort([for table in aws_glue_catalog_table.curated : table.name]), [aws_glue_catalog_table.rejects.name])
}

output "workgroup_name" {
  description = "Name of the Athena workgroup (its settings are enforced: results go to the results bucket, encrypted)."
  value       = aws_athena_workgroup.this.name
}

output "results_bucket_name" {
  description = "Name of the bucket holding Athena's query results."
  value       = module.results_bucket.name
}

output "named_query_ids" {
  description = "Id of each named query, by name (users_per_email_domain, loads_per_day, rejects_per_reason)."
  value       = { for name, query in aws_athena_named_query.this : name => query.id }
}
