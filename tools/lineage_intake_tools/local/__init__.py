"""Local stand-ins for AWS: template reader, local stack (development and tests only)."""
