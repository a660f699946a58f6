"""Use cases, one per file: what each Lambda function (and the operator CLI) does."""
