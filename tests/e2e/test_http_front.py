"""The local HTTP API's rules, without sockets: the events it builds, the authorizer cache (on a fake clock, so
the TTL is exact) and how function answers become responses."""

from __future__ import annotations

import base64
import gzip
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from lineage_intake_tools.local.front import (
    AuthorizerConfig,
    BadRequest,
    FunctionError,
    Gateway,
    IncomingRequest,
    Route,
    TooLarge,
    function_answer,
    integration_event,
    is_text_body,
    read_chunked,
)
from lineage_intake_tools.local.template import Stack

from tests.helpers.corpus import event_file

ROUTES = [Route("POST", "/api/v1/lineage", "IngestFunction"), Route("POST", "/api/v1/lineage/batch", "IngestFunction")]
AUTH = AuthorizerConfig("AuthorizerFunction", ("Authorization",), ttl_seconds=60)


def request(
    body: bytes = b"{}",
    headers: list[tuple[str, str]] | None = None,
    method: str = "POST",
    target: str = "/api/v1/lineage",
) -> IncomingRequest:
    return IncomingRequest(
        method=method,
        target=target,
        protocol="HTTP/1.1",
        headers=headers
        if headers is not None
        else [("Content-Type", "application/json"), ("Authorization", "Bearer t")],
        body=body,
        source_ip="127.0.0.1",
        port=3000,
        request_id="rid",
        received_at=datetime(2026, 11, 21, tzinfo=UTC),
    )


class Functions:
    """Records invocations; the authorizer allows ``Bearer good`` and ``Bearer t``, ingest echoes 200."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.allowed = {"Bearer good", "Bearer t"}

    def __call__(self, logical_id: str, event: dict[str, Any]) -> Any:
        self.calls.append((logical_id, event))
        if logical_id == "AuthorizerFunction":
            allowed = event["identitySource"][0] in self.allowed
            return {"isAuthorized": allowed, "context": {"tokenId": "abc", "connections": '["default"]'}}
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": '{"status":"accepted"}'}

    def count(self, logical_id: str) -> int:
        return sum(1 for name, _ in self.calls if name == logical_id)


def gateway(functions: Functions, ttl: int = 60, clock: list[float] | None = None) -> Gateway:
    now = clock if clock is not None else [0.0]
    config = AuthorizerConfig("AuthorizerFunction", ("Authorization",), ttl_seconds=ttl)
    return Gateway(ROUTES, config, functions, log=lambda *a: None, clock=lambda: now[0])


# ---------------------------------------------------------------------------- events
def test_the_integration_event_has_the_shape_of_the_committed_events() -> None:
    sample = event_file("ingest-start.json")
    event = integration_event(request(b'{"a": 1}'), ROUTES[0], "local", {"tokenId": "abc", "connections": "[]"})
    assert set(sample) <= set(event) | {"rawQueryString"}
    assert set(sample["requestContext"]) <= set(event["requestContext"])
    assert set(sample["requestContext"]["http"]) == set(event["requestContext"]["http"])
    assert event["version"] == "2.0"
    assert event["routeKey"] == event["requestContext"]["routeKey"] == "POST /api/v1/lineage"
    assert event["requestContext"]["authorizer"] == {"lambda": {"tokenId": "abc", "connections": "[]"}}
    assert event["requestContext"]["time"] == "21/Nov/2026:00:00:00 +0000"
    assert event["body"] == '{"a": 1}'
    assert event["isBase64Encoded"] is False


def test_header_names_are_lower_cased_and_repeated_headers_joined_with_commas() -> None:
    headers = [("Content-Type", "application/json"), ("X-Tag", "a"), ("x-tag", "b"), ("Cookie", "k=v; k2=v2")]
    event = integration_event(request(b"{}", headers), ROUTES[0], "local", None)
    assert event["headers"]["x-tag"] == "a,b"
    assert event["headers"]["content-type"] == "application/json"
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["k=v", "k2=v2"]
    assert event["headers"]["content-length"] == "2"


def test_query_strings_become_parameters_with_repeated_values_joined() -> None:
    event = integration_event(request(target="/api/v1/lineage?a=1&a=2&b="), ROUTES[0], "local", None)
    assert event["rawPath"] == "/api/v1/lineage"
    assert event["rawQueryString"] == "a=1&a=2&b="
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}


@pytest.mark.parametrize(
    ("content_type", "encoding", "body", "text"),
    [
        ("application/json", None, b'{"a": 1}', True),
        ("application/json; charset=UTF-8", None, b'{"a": 1}', True),
        ("application/vnd.api+json", None, b"{}", True),
        ("text/plain", None, "é".encode(), True),
        (None, None, b"{}", True),
        ("application/json", "gzip", gzip.compress(b"{}"), False),
        ("application/json", None, gzip.compress(b"{}"), False),  # gzip without Content-Encoding: not UTF-8
        ("application/octet-stream", None, b"{}", False),
        ("application/json", "identity", b"{}", True),
    ],
)
def test_bodies_go_as_text_or_as_base64_like_an_http_api_sends_them(
    content_type: str | None, encoding: str | None, body: bytes, text: bool
) -> None:
    assert is_text_body(content_type, encoding, body) is text
    headers = [(k, v) for k, v in (("Content-Type", content_type), ("Content-Encoding", encoding)) if v]
    event = integration_event(request(body, headers), ROUTES[0], "local", None)
    assert event["isBase64Encoded"] is not text
    assert (event["body"].encode() if text else base64.b64decode(event["body"])) == body


def test_a_chunked_body_is_read_whole_with_its_trailers() -> None:
    wire = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT"
    stream = io.BytesIO(wire)
    assert read_chunked(stream, 100) == b"Wikipedia"
    assert stream.read() == b"NEXT"  # the next request on the connection is untouched


@pytest.mark.parametrize(("wire", "error"), [(b"zz\r\n", BadRequest), (b"4\r\nWi", BadRequest), (b"ff\r\n", TooLarge)])
def test_a_malformed_or_oversized_chunked_body_is_refused(wire: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        read_chunked(io.BytesIO(wire), 100)


# ---------------------------------------------------------------------------- routing and authorization
def test_the_routes_and_the_authorizer_are_read_from_the_template(stack: Stack) -> None:
    routes = {(m, p, f) for m, p, f in stack.http_routes()}
    assert {(r.method, r.path, r.function_logical_id) for r in ROUTES} <= routes
    assert {("POST", "/api/v1/lineage/", "IngestFunction"), ("GET", "/api/v1/{proxy+}", "ApiFunction")} <= routes
    assert stack.unauthorized_routes() == {("ANY", "$default")}
    config = AuthorizerConfig.from_template(stack.authorizer())
    assert config == AuthorizerConfig("AuthorizerFunction", ("Authorization",), 60, True, "2.0")
    assert AuthorizerConfig.from_template(stack.authorizer(), ttl_override=0).ttl_seconds == 0


@pytest.mark.parametrize(
    ("method", "target"), [("GET", "/api/v1/lineage"), ("POST", "/elsewhere"), ("POST", "/api/v1/lineage/")]
)
def test_an_unmatched_route_is_404_and_never_reaches_a_function(method: str, target: str) -> None:
    # Given only the ingest routes (no greedy route, no $default)
    functions = Functions()
    answer = gateway(functions).handle(request(method=method, target=target))
    assert (answer.status, json.loads(answer.body)) == (404, {"message": "Not Found"})
    assert functions.calls == []


@pytest.mark.parametrize(
    ("method", "target", "expected"),
    [
        ("GET", "/api/v1/namespaces/a%2Fb/jobs", "GET /api/v1/{proxy+}"),
        ("POST", "/api/v1/lineage", "POST /api/v1/lineage"),
        ("POST", "/api/v1/api/v1/lineage", "$default"),
        ("GET", "/", "$default"),
    ],
)
def test_routes_match_exact_then_greedy_then_default_like_an_http_api(method: str, target: str, expected: str) -> None:
    routes = [*ROUTES, Route("GET", "/api/v1/{proxy+}", "ApiFunction"), Route("ANY", "$default", "ApiFunction", False)]
    chosen = Gateway(routes, AUTH, lambda _f, _e: {}, lambda *_a: None).route(method, target)
    assert chosen is not None and chosen.key == expected


def test_a_route_without_authorizer_reaches_its_function_without_a_token() -> None:
    # Given a $default route declared with Auth: NONE
    functions = Functions()
    routes = [*ROUTES, Route("ANY", "$default", "ApiFunction", authorized=False)]
    # When an unknown path is requested without any Authorization header
    answer = Gateway(routes, AUTH, functions, lambda *_a: None).handle(request(target="/nope", headers=[]))
    # Then the function answers it, with no authorizer call and no authorizer context
    assert [f for f, _ in functions.calls] == ["ApiFunction"]
    assert "authorizer" not in functions.calls[0][1]["requestContext"]
    assert answer.status == 200


@pytest.mark.parametrize("headers", [[], [("Authorization", "")], [("Authorization", "   ")]])
def test_a_missing_identity_source_is_401_without_calling_the_authorizer(headers: list[tuple[str, str]]) -> None:
    functions = Functions()
    answer = gateway(functions).handle(request(headers=headers))
    assert (answer.status, json.loads(answer.body)) == (401, {"message": "Unauthorized"})
    assert functions.calls == []


def test_the_authorizer_gets_a_payload_2_request_event_and_ingest_its_context() -> None:
    functions = Functions()
    answer = gateway(functions).handle(request(headers=[("Authorization", "Bearer good")]))
    assert answer.status == 200
    (_, auth_event), (_, ingest_event) = functions.calls
    assert auth_event["type"] == "REQUEST"
    assert auth_event["version"] == "2.0"
    assert auth_event["identitySource"] == ["Bearer good"]
    assert auth_event["routeArn"] == "arn:aws:execute-api:us-east-1:123456789012:local/$default/POST/api/v1/lineage"
    assert "body" not in auth_event
    assert ingest_event["requestContext"]["authorizer"]["lambda"] == {"tokenId": "abc", "connections": '["default"]'}


def test_a_decision_is_cached_for_the_ttl_so_a_revoked_token_works_until_it_expires() -> None:
    functions = Functions()
    clock = [100.0]
    gw = gateway(functions, ttl=60, clock=clock)
    good = request(headers=[("Authorization", "Bearer good")])
    assert gw.handle(good).status == 200
    functions.allowed.discard("Bearer good")  # revoked
    clock[0] = 159.9
    assert gw.handle(good).status == 200  # the cached allow
    assert functions.count("AuthorizerFunction") == 1
    clock[0] = 160.0
    answer = gw.handle(good)
    assert (answer.status, json.loads(answer.body)) == (403, {"message": "Forbidden"})
    assert functions.count("AuthorizerFunction") == 2


def test_denials_are_cached_too_and_a_ttl_of_zero_disables_the_cache() -> None:
    functions = Functions()
    gw = gateway(functions, ttl=60)
    bad = request(headers=[("Authorization", "Bearer bad")])
    assert gw.handle(bad).status == 403
    assert gw.handle(bad).status == 403
    assert functions.count("AuthorizerFunction") == 1
    uncached = Functions()
    gw = gateway(uncached, ttl=0)
    gw.handle(request())
    gw.handle(request())
    assert uncached.count("AuthorizerFunction") == 2


@pytest.mark.parametrize(
    "result", [RuntimeError("boom"), {"allowed": True}, {"isAuthorized": "yes"}, {"isAuthorized": True, "context": "x"}]
)
def test_an_authorizer_that_fails_or_answers_nonsense_gives_500(result: Any) -> None:
    def invoke(logical_id: str, event: dict[str, Any]) -> Any:
        if isinstance(result, Exception):
            raise FunctionError(str(result))
        return result

    gw = Gateway(ROUTES, AUTH, invoke, log=lambda *a: None)
    answer = gw.handle(request())
    assert (answer.status, json.loads(answer.body)) == (500, {"message": "Internal Server Error"})


# ---------------------------------------------------------------------------- answers
def test_a_function_answer_becomes_the_response() -> None:
    answer = function_answer(
        {
            "statusCode": 503,
            "headers": {"Content-Type": "application/json", "Retry-After": "2"},
            "cookies": ["a=b"],
            "body": base64.b64encode(b"\x00\x01").decode(),
            "isBase64Encoded": True,
        }
    )
    assert answer.status == 503
    assert ("Retry-After", "2") in answer.headers
    assert ("Set-Cookie", "a=b") in answer.headers
    assert answer.body == b"\x00\x01"


def test_an_answer_without_a_status_code_is_a_200_with_the_answer_as_json() -> None:
    answer = function_answer({"hello": "world"})
    assert (answer.status, json.loads(answer.body)) == (200, {"hello": "world"})


def test_a_function_error_is_a_500() -> None:
    def invoke(logical_id: str, event: dict[str, Any]) -> Any:
        if logical_id == "IngestFunction":
            raise FunctionError("IngestFunction: Task timed out after 29 seconds")
        return {"isAuthorized": True}

    answer = Gateway(ROUTES, AUTH, invoke, log=lambda *a: None).handle(request())
    assert (answer.status, json.loads(answer.body)) == (500, {"message": "Internal Server Error"})
