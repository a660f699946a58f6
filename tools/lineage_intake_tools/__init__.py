"""Developer tools for lineage-intake: the CLI and the local stack. Not shipped in the Lambda layer."""
