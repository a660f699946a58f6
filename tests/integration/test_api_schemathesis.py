"""schemathesis against the read function's own OpenAPI document (``GET /api/v1/openapi.json``), in process:
every generated request goes through the handler on moto, over the merged food_delivery seed, and no answer
may be a 5xx. The number of examples per operation is bounded (``MAX_EXAMPLES``) so that CI stays fast."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

import boto3
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from lineage_intake_tools.local.template import Stack

from tests.helpers.aws import load_handler
from tests.helpers.corpus import corpus_json, event_file
from tests.helpers.pipeline import Pipeline

MAX_EXAMPLES = 15


@pytest.fixture
def api(stack: Stack, aws: boto3.Session, monkeypatch: pytest.MonkeyPatch) -> Any:
    Pipeline(aws, stack).send(*corpus_json("marquez/docker/metadata.json"))
    return load_handler(stack, "ApiFunction", monkeypatch)


def request(path: str, query: dict[str, Any] | None) -> dict[str, Any]:
    event = event_file("ingest-start.json")
    event.update(body=None, isBase64Encoded=False, rawPath=path, rawQueryString=urlencode(query or {}, doseq=True))
    event["routeKey"] = event["requestContext"]["routeKey"] = "GET /api/v1/{proxy+}"
    event["requestContext"]["http"].update(method="GET", path=path)
    event["requestContext"]["authorizer"]["lambda"]["scopes"] = '["read"]'
    return event


def operations(api: Any, lambda_context: Any) -> list[Any]:
    """The document's operations, as schemathesis reads them (the handler serves the document)."""
    answer = api.handler(request("/api/v1/openapi.json", None), lambda_context)
    schema = schemathesis.openapi.from_dict(json.loads(answer["body"]))
    return [result.ok() for result in schema.get_all_operations()]


def test_no_generated_request_gets_a_5xx(api: Any, lambda_context: Any) -> None:
    found = operations(api, lambda_context)
    assert len(found) >= 14  # every read route is in the document
    answered: list[int] = []
    for operation in found:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def check(case: Any) -> None:
            # Given any request the document allows (names, numbers and strings from schemathesis)
            path = case.path
            for name, value in (case.path_parameters or {}).items():
                path = path.replace("{" + name + "}", quote(str(value), safe=""))
            # When the handler answers it
            answer = api.handler(request(path, case.query), lambda_context)
            # Then it is never a server error, and every answer is JSON
            assert answer["statusCode"] < 500, (path, case.query, answer["body"][:500])
            json.loads(answer["body"])
            answered.append(answer["statusCode"])

        check()
    # The run exercised the handler: several examples per operation, some answered 200 and some refused (4xx)
    assert len(answered) > 2 * len(found)
    assert any(s == 200 for s in answered) and any(400 <= s < 500 for s in answered)
