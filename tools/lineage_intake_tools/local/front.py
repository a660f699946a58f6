"""The local stand-in for the HTTP API (API Gateway v2) in front of the functions of ``template.yaml``.

It turns each HTTP request into the event an HTTP API sends to a Lambda proxy integration with payload format
2.0, runs the template's Lambda authorizer first, and turns the function's answer back into an HTTP response.
The rules it follows are API Gateway's, so a client that works here behaves the same against AWS:

- Routes are the template's ``HttpApi`` events (``stack.http_routes()``), matched as an HTTP API does: an
  exact method and path first, then a greedy ``/{proxy+}`` path (the longest prefix), then ``ANY`` for the
  method, then the ``$default`` route. Without a match the answer is ``404 {"message":"Not Found"}`` (an
  HTTP API has no 405: a route is the pair of method and path). Unmatched requests never reach the
  authorizer, nor do routes declared with ``Auth: Authorizer: NONE``.
- The event: ``version`` 2.0, ``routeKey``, ``rawPath``, ``rawQueryString``, header names lower-cased with
  repeated headers joined by commas, ``cookies`` split out of the ``Cookie`` header, ``queryStringParameters``,
  ``requestContext`` (``http.method/path/protocol/sourceIp/userAgent``, ``requestId``, ``time``,
  ``timeEpoch``, ``authorizer.lambda`` = the authorizer's context). A body goes as text when its media type
  is textual (``text/*``, JSON, XML, JavaScript, ``+json``/``+xml``) and it is UTF-8; anything else (gzip
  with or without ``Content-Encoding``, binary types) goes base64 with ``isBase64Encoded: true``. A chunked
  request is de-chunked first: the function sees the whole body and a ``content-length``, never
  ``transfer-encoding``. An HTTP API never decompresses.
- Limits: a body over 10 MB answers 413 before any function runs; an event over Lambda's 6 MB synchronous
  payload limit answers 413 too. The request line, headers and whole body must arrive within ``read_timeout``
  (408 otherwise), only canonical origin-form targets are routed (``is_canonical``), and every error the front
  answers itself, http.server's included (400, 431, 501, 505), is ``{"message": ...}`` JSON.
- The authorizer (payload 2.0, simple responses): when an identity-source header is missing or empty the
  answer is ``401 {"message":"Unauthorized"}`` and the authorizer is not called. Otherwise its decision is
  cached per identity-source value for ``ReauthorizeEvery`` seconds (0: no cache), allow and deny alike, and
  shared by every route. ``isAuthorized: false`` answers ``403 {"message":"Forbidden"}``; an authorizer that
  fails or answers something malformed gives ``500 {"message":"Internal Server Error"}``.
- The function's answer: ``statusCode``/``headers``/``cookies``/``body``/``isBase64Encoded``; an answer
  without ``statusCode`` is sent as ``200`` JSON, as payload 2.0 does. A function error answers 500.

Functions are called through ``invoke(logical_id, event)``; the stack supplies it (in-process handlers).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

#: An HTTP API's request size quota (10 MB) and Lambda's synchronous invocation payload quota (6 MB).
MAX_REQUEST_BYTES = 10 * 1024 * 1024
MAX_INVOKE_PAYLOAD_BYTES = 6 * 1024 * 1024
#: How long the front waits for a request line, its headers, or its whole body before it answers 408 and closes.
READ_TIMEOUT_SECONDS = 10.0

TEXT_MEDIA_TYPES = frozenset(
    {"application/json", "application/javascript", "application/xml", "application/x-www-form-urlencoded"}
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

Invoke = Callable[[str, dict[str, Any]], Any]
Log = Callable[[str, str, dict[str, Any]], None]


class FunctionError(Exception):
    """The function raised or timed out (Lambda's ``FunctionError``)."""


@dataclass(frozen=True)
class AuthorizerConfig:
    """The HTTP API's Lambda authorizer, as ``Stack.authorizer()`` reads it from the template."""

    function_logical_id: str
    headers: tuple[str, ...]
    ttl_seconds: int
    simple_responses: bool = True
    payload_format: str = "2.0"

    @classmethod
    def from_template(cls, spec: Mapping[str, Any], ttl_override: int | None = None) -> AuthorizerConfig:
        config = cls(
            function_logical_id=str(spec["function_logical_id"]),
            headers=tuple(str(h) for h in spec["headers"]),
            ttl_seconds=int(spec["ttl_seconds"] if ttl_override is None else ttl_override),
            simple_responses=bool(spec["simple_responses"]),
            payload_format=str(spec["payload_format"]),
        )
        if config.payload_format != "2.0" or not config.simple_responses:
            raise NotImplementedError(
                "the local front supports Lambda authorizers with payload format 2.0 and simple responses only; "
                f"the template declares payload format {config.payload_format!r}, "
                f"simple responses {config.simple_responses}"
            )
        if config.ttl_seconds < 0:
            raise ValueError("the authorizer cache TTL cannot be negative")
        return config


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function_logical_id: str
    authorized: bool = True

    @property
    def key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"

    def matches(self, method: str, raw_path: str) -> bool:
        """Greedy ``{proxy+}``: the prefix and at least one more character (API Gateway's rule)."""
        if self.method not in (method, "ANY") or not self.path.endswith("/{proxy+}"):
            return False
        prefix = self.path.removesuffix("{proxy+}")
        return raw_path.startswith(prefix) and len(raw_path) > len(prefix)


@dataclass(frozen=True)
class Decision:
    authorized: bool
    context: dict[str, Any]


class DecisionCache:
    """Authorizer decisions keyed by the identity-source values, each kept for ``ttl`` seconds from its making."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self.clock = clock
        self._entries: dict[tuple[str, ...], tuple[float, Decision]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> Decision | None:
        if self.ttl <= 0:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self.clock() >= entry[0]:
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: tuple[str, ...], decision: Decision, made_at: float) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._entries) > 10_000:  # bounded: drop what has expired
                now = self.clock()
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            self._entries[key] = (made_at + self.ttl, decision)


# ---------------------------------------------------------------------------- events
def request_id() -> str:
    """An id shaped like API Gateway's (``apigw-requestid``)."""
    return base64.b64encode(secrets.token_bytes(10)).decode("ascii")


def gateway_time(moment: datetime) -> str:
    """``21/Nov/2026:00:00:00 +0000``, independent of the locale."""
    utc = moment.astimezone(UTC)
    return f"{utc.day:02d}/{_MONTHS[utc.month - 1]}/{utc.year}:{utc.strftime('%H:%M:%S')} +0000"


def is_text_body(content_type: str | None, content_encoding: str | None, body: bytes) -> bool:
    """Whether an HTTP API hands the body to Lambda as text (else base64)."""
    if content_encoding and content_encoding.strip().lower() not in ("", "identity"):
        return False
    if content_type:
        media = content_type.split(";", 1)[0].strip().lower()
        textual = (
            media.startswith("text/") or media in TEXT_MEDIA_TYPES or media.endswith("+json") or media.endswith("+xml")
        )
        if not textual:
            return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def merge_headers(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Lower-case names; repeated headers joined with commas (payload 2.0 has no multi-value headers)."""
    merged: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    return merged


def is_canonical(target: str) -> bool:
    """Origin-form with a normalised path, as API Gateway routes it: ``//api/v1/lineage``, ``/api/./v1``, ``/a/../``
    and absolute-form targets (``http://host/api/v1/lineage``) match no route."""
    path = target.split("?", 1)[0]
    if not path.startswith("/") or "//" in path:
        return False
    return not any(segment in (".", "..") for segment in path.split("/"))


@dataclass
class IncomingRequest:
    """An HTTP request as the front received it (body already de-chunked)."""

    method: str
    target: str
    protocol: str
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str
    port: int
    request_id: str
    received_at: datetime
    #: ``$context`` variables for the access log that the gateway learns on the way (route, authorizer, integration).
    access: dict[str, str] = field(default_factory=dict)

    @property
    def raw_path(self) -> str:
        return urlsplit(self.target).path or "/"

    @property
    def raw_query(self) -> str:
        return urlsplit(self.target).query


def _base_event(request: IncomingRequest, route_key: str, api_id: str) -> dict[str, Any]:
    headers = merge_headers(
        [(n, v) for n, v in request.headers if n.lower() not in ("transfer-encoding", "content-length")]
    )
    if request.body or any(n.lower() in ("content-length", "transfer-encoding") for n, _ in request.headers):
        headers["content-length"] = str(len(request.body))
    headers.setdefault("x-forwarded-for", request.source_ip)
    headers.setdefault("x-forwarded-port", str(request.port))
    headers.setdefault("x-forwarded-proto", "http")
    headers.setdefault("x-amzn-trace-id", f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
    }
    cookie = headers.pop("cookie", None)
    if cookie:
        event["cookies"] = [c.strip() for c in cookie.replace(",", ";").split(";") if c.strip()]
    event["headers"] = headers
    if request.raw_query:
        params: dict[str, str] = {}
        for key, value in parse_qsl(request.raw_query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    host = headers.get("host", f"127.0.0.1:{request.port}")
    event["requestContext"] = {
        "accountId": "123456789012",
        "apiId": api_id,
        "domainName": host,
        "domainPrefix": host.split(".", 1)[0].split(":", 1)[0],
        "http": {
            "method": request.method,
            "path": unquote(request.raw_path),
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request.request_id,
        "routeKey": route_key,
        "stage": "$default",
        "time": gateway_time(request.received_at),
        "timeEpoch": int(request.received_at.timestamp() * 1000),
    }
    return event


def integration_event(
    request: IncomingRequest, route: Route, api_id: str, authorizer_context: dict[str, Any] | None
) -> dict[str, Any]:
    """The payload 2.0 event of a Lambda proxy integration."""
    event = _base_event(request, route.key, api_id)
    if authorizer_context is not None:
        event["requestContext"]["authorizer"] = {"lambda": authorizer_context}
    if request.body:
        headers = event["headers"]
        if is_text_body(headers.get("content-type"), headers.get("content-encoding"), request.body):
            event["body"] = request.body.decode("utf-8")
            event["isBase64Encoded"] = False
        else:
            event["body"] = base64.b64encode(request.body).decode("ascii")
            event["isBase64Encoded"] = True
    else:
        event["isBase64Encoded"] = False
    return event


def authorizer_event(
    request: IncomingRequest, route: Route, api_id: str, identity: Sequence[str], region: str, account: str
) -> dict[str, Any]:
    """The payload 2.0 REQUEST event of a Lambda authorizer (no body)."""
    event = _base_event(request, route.key, api_id)
    event = {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": f"arn:aws:execute-api:{region}:{account}:{api_id}/$default/{route.method}{route.path}",
        "identitySource": list(identity),
        **{k: v for k, v in event.items() if k != "version"},
    }
    return event


# ---------------------------------------------------------------------------- responses
@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def gateway_error(status: int, message: str) -> Answer:
    body = json.dumps({"message": message}, separators=(",", ":")).encode("utf-8")
    return Answer(status, [("Content-Type", "application/json")], body)


def function_answer(result: Any) -> Answer:
    """A payload 2.0 function answer as an HTTP response. Raises ``ValueError`` when it is malformed."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # Payload 2.0 infers the format: any other valid JSON is the body of a 200.
        return Answer(200, [("Content-Type", "application/json")], json.dumps(result).encode("utf-8"))
    status = result["statusCode"]
    if not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"statusCode {status!r} is not an HTTP status")
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        headers.append((str(name), str(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(v)) for v in values)
    headers.extend(("Set-Cookie", str(c)) for c in result.get("cookies") or [])
    raw = result.get("body")
    if raw is None:
        body = b""
    elif not isinstance(raw, str):
        raise ValueError("body must be a string")
    elif result.get("isBase64Encoded"):
        body = base64.b64decode(raw)
    else:
        body = raw.encode("utf-8")
    if not any(n.lower() == "content-type" for n, _ in headers) and body:
        headers.append(("Content-Type", "application/json"))
    return Answer(status, headers, body)


# ---------------------------------------------------------------------------- the gateway
class Gateway:
    """Routing, authorization and integration: what happens to one request, independent of the socket."""

    def __init__(
        self,
        routes: Sequence[Route],
        authorizer: AuthorizerConfig | None,
        invoke: Invoke,
        log: Log,
        api_id: str = "local",
        region: str = "us-east-1",
        account: str = "123456789012",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.routes = {(r.method, r.path): r for r in routes}
        self.authorizer = authorizer
        self.invoke = invoke
        self.log = log
        self.api_id = api_id
        self.region = region
        self.account = account
        self.clock = clock
        self.cache = DecisionCache(authorizer.ttl_seconds if authorizer else 0, clock)
        #: Writes one access log line (the template's ``AccessLogSettings.Format``); None: no access log.
        self.access_log: Callable[[str], None] | None = None
        self.access_format: str = ""

    def write_access_line(self, request: IncomingRequest, status: int, latency_ms: float, length: int) -> None:
        """One line per request, denied ones included, as API Gateway writes it (docs/operations.md#log-groups)."""
        if self.access_log is None or not self.access_format:
            return
        values = {
            "requestId": request.request_id,
            "requestTime": request.received_at.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "routeKey": "-",
            "status": str(status),
            "responseLatency": str(round(latency_ms)),
            "identity.sourceIp": request.source_ip,
            "identity.userAgent": merge_headers(request.headers).get("user-agent", "-"),
            "responseLength": str(length),
            "protocol": request.protocol,
        } | request.access

        def value(match: re.Match[str]) -> str:
            return json.dumps(values.get(match.group(1)) or "-")[1:-1]  # escaped for the JSON string around it

        line = re.sub(r"\$context\.([\w.]+)", value, self.access_format)
        self.access_log(json.dumps(json.loads(line), separators=(",", ":")))

    def route(self, method: str, raw_path: str) -> Route | None:
        """Exact route, then the longest matching ``{proxy+}`` route, then ``ANY`` on the path, then ``$default``."""
        exact = self.routes.get((method, raw_path)) or self.routes.get(("ANY", raw_path))
        if exact is not None:
            return exact
        greedy = [r for r in self.routes.values() if r.matches(method, raw_path)]
        if greedy:
            return max(greedy, key=lambda r: (len(r.path), r.method != "ANY"))
        return self.routes.get(("ANY", "$default"))

    def handle(self, request: IncomingRequest) -> Answer:
        route = self.route(request.method, request.raw_path) if is_canonical(request.target) else None
        if route is None:
            return gateway_error(404, "Not Found")
        request.access["routeKey"] = route.key
        context: dict[str, Any] | None = None
        if self.authorizer is not None and route.authorized:
            outcome = self._authorize(request, route, self.authorizer)
            if isinstance(outcome, Answer):
                return outcome
            context = outcome
            request.access["authorizer.tokenId"] = str(context.get("tokenId") or "-")
        event = integration_event(request, route, self.api_id, context)
        if len(json.dumps(event)) > MAX_INVOKE_PAYLOAD_BYTES:
            return gateway_error(413, "Request Entity Too Large")
        started = time.perf_counter()
        try:
            result = self.invoke(route.function_logical_id, event)
        except FunctionError as exc:
            self.log("ERROR", "integration function failed", {"function": route.function_logical_id, "error": str(exc)})
            request.access |= {"integrationStatus": "200", "integrationErrorMessage": str(exc)}
            return gateway_error(500, "Internal Server Error")
        finally:
            request.access["integrationLatency"] = str(round((time.perf_counter() - started) * 1000))
        request.access["integrationStatus"] = "200"  # Lambda's invoke status; the function's own is `status`
        try:
            return function_answer(result)
        except (ValueError, TypeError) as exc:
            self.log(
                "ERROR", "malformed integration response", {"function": route.function_logical_id, "error": str(exc)}
            )
            return gateway_error(500, "Internal Server Error")

    def _authorize(self, request: IncomingRequest, route: Route, config: AuthorizerConfig) -> Answer | dict[str, Any]:
        headers = merge_headers(request.headers)
        identity = [headers.get(name.lower(), "") for name in config.headers]
        if any(not value.strip() for value in identity):
            return gateway_error(401, "Unauthorized")
        key = tuple(identity)
        decision = self.cache.get(key)
        if decision is None:
            made_at = self.clock()
            event = authorizer_event(request, route, self.api_id, identity, self.region, self.account)
            try:
                result = self.invoke(config.function_logical_id, event)
            except FunctionError as exc:
                self.log("ERROR", "authorizer failed", {"function": config.function_logical_id, "error": str(exc)})
                request.access["authorizer.error"] = str(exc)
                return gateway_error(500, "Internal Server Error")
            if not (isinstance(result, dict) and isinstance(result.get("isAuthorized"), bool)):
                self.log("ERROR", "malformed authorizer response", {"function": config.function_logical_id})
                return gateway_error(500, "Internal Server Error")
            context = result.get("context") or {}
            if not isinstance(context, dict):
                self.log("ERROR", "malformed authorizer context", {"function": config.function_logical_id})
                return gateway_error(500, "Internal Server Error")
            decision = Decision(authorized=result["isAuthorized"], context=context)
            self.cache.put(key, decision, made_at)
        if not decision.authorized:
            return gateway_error(403, "Forbidden")
        return dict(decision.context)


class BadRequest(Exception):
    pass


class TooLarge(Exception):
    pass


def read_chunked(rfile: Any, limit: int) -> bytes:
    """Read a ``Transfer-Encoding: chunked`` body (and its trailers) from the connection."""
    body = bytearray()
    while True:
        line = rfile.readline(65537)
        if not line.endswith(b"\n"):
            raise BadRequest("truncated chunk size line")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadRequest("invalid chunk size") from None
        if size < 0:
            raise BadRequest("invalid chunk size")
        if size == 0:
            while True:  # trailers, up to the empty line
                trailer = rfile.readline(65537)
                if trailer in (b"\r\n", b"\n", b""):
                    return bytes(body)
        if len(body) + size > limit:
            raise TooLarge
        chunk = rfile.read(size)
        if len(chunk) != size:
            raise BadRequest("truncated chunk")
        body += chunk
        if rfile.readline(3) not in (b"\r\n", b"\n"):
            raise BadRequest("chunk not followed by CRLF")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.1"  # no HTTP/0.9: an unparsable request line still gets a status line
    server_version = "lineage-intake-local"

    def version_string(self) -> str:
        return self.server_version

    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.read_timeout)  # every read of the request line, headers and body
        # Headers and body are separate writes: without this, Nagle and the client's delayed ACK add 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, busy=False)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # the front logs JSON itself
        return

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, TimeoutError) as exc:  # the client went away or went quiet: not our error
            self.close_connection = True
            self.server.log(
                "INFO", "client disconnected", {"client": self.client_address[0], "error": type(exc).__name__}
            )

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (400 request line, 414, 431 headers, 501, 505) as an HTTP API answers
        them: ``{"message": ...}`` in JSON, never HTML."""
        short = self.responses.get(code, ("Error", ""))[0]
        body = json.dumps({"message": short}).encode()
        self.close_connection = True
        self.send_response(code, short)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    def _dispatch(self) -> None:
        self.server.track(self.connection, busy=True)
        started = time.perf_counter()
        rid = request_id()
        try:
            answer = self._answer(rid)
        except Exception as exc:  # a bug in the front: never kill the connection thread silently
            self.server.log("ERROR", "local front failed", {"error": repr(exc)})
            answer = gateway_error(500, "Internal Server Error")
            self.close_connection = True
        try:
            self._send(answer, rid)
        finally:
            self.server.track(self.connection, busy=False)
            request = getattr(self, "_request", None)
            if request is not None:
                latency = (time.perf_counter() - started) * 1000
                self.server.gateway.write_access_line(request, answer.status, latency, len(answer.body))
            # The access log proper (the template's format) goes to its own file through the gateway, below;
            # this short line is for a console at `--log-level DEBUG`.
            self.server.log(
                "DEBUG",
                "request",
                {
                    "requestId": rid,
                    "method": self.command,
                    "path": urlsplit(self.path).path,
                    "status": answer.status,
                    "latencyMs": round((time.perf_counter() - started) * 1000, 1),
                },
            )

    def _answer(self, rid: str) -> Answer:
        self._request: IncomingRequest | None = None
        encoding = (self.headers.get("Transfer-Encoding") or "").lower()
        try:
            if "chunked" in encoding:
                body = read_chunked(self.rfile, MAX_REQUEST_BYTES)
            else:
                length = int(self.headers.get("Content-Length") or 0)
                if length < 0:
                    raise BadRequest("negative Content-Length")
                if length > MAX_REQUEST_BYTES:
                    raise TooLarge
                body = self._read_body(length)
        except TimeoutError:
            self.close_connection = True
            return gateway_error(408, "Request Timeout")
        except TooLarge:
            self.close_connection = True
            return gateway_error(413, "Request Entity Too Large")
        except (BadRequest, ValueError):
            self.close_connection = True
            return gateway_error(400, "Bad Request")
        request = IncomingRequest(
            method=self.command,
            # The target as sent: http.server collapses a leading "//" in self.path, API Gateway does not.
            target=self.requestline.split(" ")[1],
            protocol=self.request_version,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            port=self.server.server_address[1],
            request_id=rid,
            received_at=datetime.now(UTC),
        )
        self._request = request
        return self.server.gateway.handle(request)

    def _read_body(self, length: int) -> bytes:
        """``length`` bytes within ``read_timeout`` in total, however slowly they trickle in."""
        deadline = time.monotonic() + self.server.read_timeout
        body = bytearray()
        while len(body) < length:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.connection.settimeout(left)
            chunk = self.rfile.read1(min(length - len(body), 1 << 20))
            if not chunk:
                raise BadRequest("truncated body")
            body += chunk
        self.connection.settimeout(self.server.read_timeout)
        return bytes(body)

    def _send(self, answer: Answer, rid: str) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.send_header("apigw-requestid", rid)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], gateway: Gateway, log: Log, read_timeout: float) -> None:
        self.gateway = gateway
        self.log = log
        self.read_timeout = read_timeout
        self._connections: dict[socket.socket, bool] = {}
        self._connection_threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve, args=(request, client_address), name="front-connection", daemon=True
        )
        with self._lock:
            self._connection_threads.add(thread)
        thread.start()

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._connection_threads.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One structured line instead of socketserver's traceback on stderr."""
        self.log(
            "ERROR", "local front connection failed", {"client": client_address[0], "error": repr(sys.exc_info()[1])}
        )

    def track(self, conn: socket.socket, busy: bool) -> None:
        with self._lock:
            self._connections[conn] = busy
            if not busy:
                self._idle.notify_all()

    def untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.pop(conn, None)
            self._idle.notify_all()

    def drain(self, grace_seconds: float) -> None:
        """Let requests in flight finish (up to the grace time), then close every connection and join."""
        deadline = time.monotonic() + grace_seconds
        with self._lock:
            while any(self._connections.values()) and time.monotonic() < deadline:
                self._idle.wait(timeout=max(0.0, deadline - time.monotonic()))
            connections = list(self._connections)
            threads = list(self._connection_threads)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))


class HttpFront:
    """The HTTP API on ``host:port`` (port 0 picks a free one). ``start()`` returns once it accepts."""

    def __init__(
        self,
        gateway: Gateway,
        host: str = "127.0.0.1",
        port: int = 0,
        log: Log | None = None,
        read_timeout: float = READ_TIMEOUT_SECONDS,
    ) -> None:
        self.gateway = gateway
        self.read_timeout = read_timeout
        self.host = host
        self.requested_port = port
        self.log: Log = log or gateway.log
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the front is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def bind(self) -> None:
        """Take the port now (connections wait in the backlog until ``start``); raises ``OSError`` if taken."""
        if self._server is None:
            self._server = _Server((self.host, self.requested_port), self.gateway, self.log, self.read_timeout)

    def start(self) -> None:
        self.bind()
        assert self._server is not None
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="front", daemon=True
        )
        self._thread.start()

    def stop(self, grace_seconds: float = 5.0) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        if thread is None:  # bound, never served
            server.server_close()
            self._server = None
            return
        server.shutdown()
        server.drain(grace_seconds)
        server.server_close()
        if thread is not None:
            thread.join()
        self._server = self._thread = None


def free_port(host: str = "127.0.0.1") -> int:
    """A currently free TCP port on ``host`` (for tests that must know the port before starting)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


__all__ = [
    "MAX_INVOKE_PAYLOAD_BYTES",
    "MAX_REQUEST_BYTES",
    "AuthorizerConfig",
    "FunctionError",
    "Gateway",
    "HttpFront",
    "Route",
    "authorizer_event",
    "free_port",
    "integration_event",
    "is_text_body",
]
