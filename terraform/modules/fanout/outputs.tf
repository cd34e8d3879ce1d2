output "topic_arn" {
  description = "ARN of the SNS topic."
  value       = aws_sns_topic.this.arn
}

output "topic_name" {
  description = "Name of the SNS topic."
  value       = aws_sns_topic.this.name
}

output "queues" {
  description = "Per consumer key: the queue's name, url, arn and visibility_timeout_seconds, and its dead-letter queue's dlq_name, dlq_url and dlq_arn."
  value = {
    for key, queue in aws_sqs_queue.this : key => {
      name                       = queue.name
      url                        = queue.url
      arn                        = queue.arn
      visibility_timeout_seconds = queue.visibility_timeout_seconds
      dlq_name                   = aws_sqs_queue.dead_letter[key].name
      dlq_url                    = aws_sqs_queue.dead_letter[key].url
      dlq_arn                    = aws_sqs_queue.dead_letter[key].arn
    }
  }
}

output "subscription_arns" {
  description = "Per consumer key: ARN of the queue's subscription to the topic."
  value       = { for key, sub in aws_sns_topic_subscription.this : key => sub.arn }
}


output "subscription_dlq" {
  description = "The subscriptions' dead-letter queue (name, url, arn), where SNS puts what it could not deliver to a queue; null when no queue is subscribed."
  value = length(aws_sqs_queue.subscription_dead_letter) == 0 ? null : {
    name = aws_sqs_queue.subscription_dead_letter[0].name
    url  = aws_sqs_queue.subscription_dead_letter[0].url
    arn  = aws_sqs_queue.subscription_dead_letter[0].arn
  }
}
