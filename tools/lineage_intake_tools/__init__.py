"""Operator and developer tools that run outside Lambda: the CLI, the local stack and the local Logs Insights engine.

Not shipped in the Lambda layer."""
