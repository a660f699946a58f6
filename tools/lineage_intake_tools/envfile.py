"""The env file that ``make run`` writes and the CLI, the demo and the tests read (see docs/local.md)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (``export`` prefix, quotes and ``#`` comments allowed), as shells source them.

    Raises ``OSError`` when the file cannot be read; callers say what to do about it.
    """
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def endpoint_variable(service: str) -> str:
    """botocore's per-service endpoint variable of a client name: ``AWS_ENDPOINT_URL_`` and the service id, upper
    case, ``-`` and spaces as ``_`` (``dynamodbstreams`` is ``AWS_ENDPOINT_URL_DYNAMODB_STREAMS``)."""
    from botocore.utils import CLIENT_NAME_TO_HYPHENIZED_SERVICE_ID_OVERRIDES

    service_id = CLIENT_NAME_TO_HYPHENIZED_SERVICE_ID_OVERRIDES.get(service, service)
    return "AWS_ENDPOINT_URL_" + service_id.replace("-", "_").upper()


def endpoint_url(env: Mapping[str, str], service: str) -> str | None:
    """The endpoint botocore would pick for ``service`` from these variables: its own, else ``AWS_ENDPOINT_URL``
    (the local stack serves DynamoDB and DynamoDB Streams apart from the rest; docs/local.md)."""
    return env.get(endpoint_variable(service)) or env.get("AWS_ENDPOINT_URL") or None
