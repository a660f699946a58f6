"""Operator tools that run outside Lambda: the CLI, the local stack and the local Logs Insights engine."""
