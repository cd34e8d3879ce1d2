# An ECR repository for one function's image: immutable tags, scan on push, a lifecycle policy that keeps the
# last N images, and a repository policy that lets Lambda pull for the functions named.

resource "aws_ecr_repository" "this" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_delete

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = var.kms_key_arn == null ? "AES256" : "KMS"
    kms_key         = var.kms_key_arn
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name

  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Expire untagged images after ${var.untagged_expiry_days} days"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = var.untagged_expiry_days
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the last ${var.keep_last_images} images"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = var.keep_last_images
        }
        action = { type = "expire" }
      },
    ]
  })
}

# Without this statement Lambda adds one itself at CreateFunction, but only if the deploying principal may get
# and set repository policies; otherwise CreateFunction fails ("Lambda does not have permission to access the
# ECR image"). Declared here, the pull does not depend on who deploys. Scoped to the functions' ARNs (the
# unqualified ARN and any version or alias), built from names so the repository needs no function to exist.
data "aws_iam_policy_document" "lambda_pull" {
  count = length(var.lambda_function_arns) == 0 ? 0 : 1

  statement {
    sid     = "LambdaECRImageRetrievalPolicy"
    actions = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringLike"
      variable = "aws:sourceArn"
      values   = flatten([for arn in var.lambda_function_arns : [arn, "${arn}:*"]])
    }
  }
}

resource "aws_ecr_repository_policy" "lambda_pull" {
  count = length(var.lambda_function_arns) == 0 ? 0 : 1

  repository = aws_ecr_repository.this.name
  policy     = data.aws_iam_policy_document.lambda_pull[0].json
}
