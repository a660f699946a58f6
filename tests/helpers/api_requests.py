"""GET requests to the read function's handler, shaped like HTTP API payload 2.0 (events/ingest-start.json)."""

from __future__ import annotations

import copy
import json
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

from tests.helpers.corpus import event_file


def get(
    api: ModuleType, context: Any, path: str, query: dict[str, Any] | None = None, scopes: str | None = '["read"]'
) -> tuple[int, Any]:
    """A GET through the handler with a token of ``scopes`` (None: no authorizer context); (status, JSON body)."""
    request = copy.deepcopy(event_file("ingest-start.json"))
    request.update(body=None, isBase64Encoded=False, rawPath=path, rawQueryString=urlencode(query or {}))
    request["routeKey"] = request["requestContext"]["routeKey"] = "GET /api/v1/{proxy+}"
    request["requestContext"]["http"].update(method="GET", path=path)
    request["headers"].pop("content-type", None)
    if scopes is None:
        del request["requestContext"]["authorizer"]
    else:
        request["requestContext"]["authorizer"]["lambda"]["scopes"] = scopes
    answer = api.handler(request, context)
    return answer["statusCode"], json.loads(answer["body"])
