output "landing_bucket" {
  description = "Name of the landing bucket, where data files are dropped."
  value       = module.bucket["landing"].name
}

output "datalake_bucket" {
  description = "Name of the data lake bucket."
  value       = module.bucket["datalake"].name
}

output "quarantine_bucket" {
  description = "Name of the quarantine bucket (rejected records and files)."
  value       = module.bucket["quarantine"].name
}

output "topic_arn" {
  description = "ARN of the SNS topic the landing bucket publishes its ObjectCreated events to."
  value       = module.fanout.topic_arn
}

output "table_name" {
  description = "Name of the users DynamoDB table."
  value       = module.table.name
}

output "functions" {
  description = "Function name per function key (datalake-loader, database-loader)."
  value       = { for key, f in module.function : key => f.function_name }
}

output "queues" {
  description = "Per function key, the queue it consumes: url, arn, and its dead-letter queue's dlq_url and dlq_arn."
  value = {
    for key, q in module.fanout.queues : key => {
      url     = q.url
      arn     = q.arn
      dlq_url = q.dlq_url
      dlq_arn = q.dlq_arn
    }
  }
}

output "repository_urls" {
  description = "ECR repository URL per function key: push each function's image there."
  value       = { for key, r in module.ecr : key => r.repository_url }
}

output "lambda_architecture" {
  description = "Instruction set the images must be built for (x86_64 or arm64)."
  value       = var.lambda_architecture
}

output "region" {
  description = "Region the stack is deployed in."
  value       = data.aws_region.current.name
}

output "image_uris" {
  description = "Image URI each function runs, per function key."
  value       = local.image_uris
}

output "table_arn" {
  description = "ARN of the users table."
  value       = module.table.arn
}

output "event_source_mappings" {
  description = "UUID of each queued function's SQS event source mapping, per function key (disabled when managed_sqs_polling is false)."
  value       = { for key, f in module.function : key => f.event_source_mapping_uuid if f.event_source_mapping_uuid != null }
}

output "subscription_dlq" {
  description = "The subscriptions' dead-letter queue (url, arn): events SNS could not deliver to a queue."
  value = module.fanout.subscription_dlq == null ? null : {
    url = module.fanout.subscription_dlq.url
    arn = module.fanout.subscription_dlq.arn
  }
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard of the pipeline (queue depth and age, dead letters, function errors)."
  value       = module.monitoring.dashboard_name
}

output "bucket_name_suffix" {
  description = "The suffix the bucket names end with (by default `<account id>-<region>`; empty: none)."
  value       = local.bucket_name_suffix
}

output "glue_database" {
  description = "Name of the Glue database of the data lake (tables users, events, rejects)."
  value       = module.catalog.database_name
}

output "athena_workgroup" {
  description = "Name of the Athena workgroup to query the data lake in (its result settings are enforced)."
  value       = module.catalog.workgroup_name
}

output "athena_results_bucket" {
  description = "Name of the bucket holding Athena's query results (encrypted, expiring)."
  value       = module.catalog.results_bucket_name
}

output "named_queries" {
  description = "Id of each Athena named query, by name (users_per_email_domain, loads_per_day, rejects_per_reason)."
  value       = module.catalog.named_query_ids
}

output "user_pool_id" {
  description = "ID of the Cognito user pool whose tokens the ingest API takes."
  value       = module.identity.user_pool_id
}

output "user_pool_client_id" {
  description = "ID of the user pool's public app client (no secret; SRP and password sign-in)."
  value       = module.identity.client_id
}

output "api_endpoint" {
  description = "Base URL of the ingest API (null when no function has the http trigger)."
  value       = try(module.api[0].api_endpoint, null)
}

output "upload_page_url" {
  description = "Address of the upload page (https://<distribution domain or first alias>/); null when enable_upload_page is false."
  value       = try(module.site[0].url, null)
}
