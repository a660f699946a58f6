"""DynamoDB and S3 adapters: one toolkit (``dynamo``) and one module per table."""
