"""The local stack's DynamoDB and DynamoDB Streams endpoint: moto's own handlers behind a minimal HTTP server.

moto's server (``ThreadedMotoServer``) spends most of the stack's CPU on work that is the same for every
request: werkzeug's WSGI server, the dispatch of each request over all of moto's services and Flask's routing
(docs/merge.md "Throughput"). DynamoDB is nearly all of the stack's requests (3.6 per accepted event), so
this endpoint serves just those two services from a ``ThreadingHTTPServer`` (HTTP/1.1 keep-alive): it builds
moto's ``Request`` from the raw HTTP message and calls the same ``DynamoHandler`` / ``DynamoDBStreamsHandler``
that moto's server routes to, in the same process. Same backend state, same ``moto_lock``, same status, headers
and JSON bodies (errors included, which botocore parses: ``ConditionalCheckFailedException``,
``TransactionCanceledException`` with its reasons, ``ValidationException``). Everything else (S3, SQS, the
``/moto-api`` reset) stays on moto's server.

Local stack only: the functions reach it through botocore's ``AWS_ENDPOINT_URL_DYNAMODB`` and
``AWS_ENDPOINT_URL_DYNAMODB_STREAMS``; in AWS nothing here exists.
"""

from __future__ import annotations

import contextlib
import io
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: ``X-Amz-Target`` prefix -> the moto handler class's module and name (imported on first use).
_TARGETS = {
    "DynamoDB_20120810": ("moto.dynamodb.responses", "DynamoHandler"),
    "DynamoDBStreams_20120810": ("moto.dynamodbstreams.responses", "DynamoDBStreamsHandler"),
}
#: What Flask sends when a handler names no content type (moto's server answers through Flask).
_FLASK_DEFAULT_TYPE = "text/html; charset=utf-8"
#: The largest request body read (DynamoDB's own limit on a request is 16 MB; BatchWriteItem at most).
MAX_BODY = 16 * 1024 * 1024


def _request_class() -> Any:
    """moto's ``Request``, marked as coming from an HTTP server (so moto adds no second ``Date`` header)."""
    global _REQUEST
    if _REQUEST is None:
        from moto.core.request import Request

        _REQUEST = type("ServerRequest", (Request,), {"from_wsgi_server": True})
    return _REQUEST


_REQUEST: Any = None


def _handler_class(target: str) -> Any:
    import importlib

    service = target.partition(".")[0]
    module_name, class_name = _TARGETS[service]
    return getattr(importlib.import_module(module_name), class_name)


def dispatch(
    method: str, path: str, headers: list[tuple[str, str]], body: bytes, host: str
) -> tuple[int, dict[str, str], bytes]:
    """One request through moto's handler, as moto's server would answer it: (status, headers, body)."""
    from botocore.exceptions import ClientError
    from moto.moto_api import recorder

    target = next((value for name, value in headers if name.lower() == "x-amz-target"), "")
    if target.partition(".")[0] not in _TARGETS:
        return _json_error(400, "UnknownOperationException", f"no DynamoDB operation for X-Amz-Target {target!r}")
    path_info, _, query = path.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path_info,
        "QUERY_STRING": query,
        "RAW_URI": path,
        "SERVER_NAME": host.rpartition(":")[0] or host,
        "SERVER_PORT": host.rpartition(":")[2] or "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in headers:
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value
        else:
            key = f"HTTP_{key}"
            environ[key] = f"{environ[key]},{value}" if key in environ else value
    environ.setdefault("HTTP_HOST", host)
    request = _request_class()(environ)
    try:
        recorder._record_request(request)
        status, answer_headers, content = _handler_class(target).dispatch(
            request, request.raw_url, dict(request.headers)
        )
    except ClientError as exc:  # as moto's server answers it (moto.core.utils.convert_to_flask_response)
        status, answer_headers, content = 400, {}, exc.response["Error"]["Message"]
    except NotImplementedError as exc:
        return _json_error(400, "UnknownOperationException", str(exc))
    data = content.encode("utf-8") if isinstance(content, str) else bytes(content or b"")
    out = {str(k): str(v) for k, v in answer_headers.items()}
    if not any(k.lower() == "content-type" for k in out):
        out["Content-Type"] = _FLASK_DEFAULT_TYPE
    return int(status), out, data


def _json_error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    import json

    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}).encode()
    return status, {"Content-Type": "application/x-amz-json-1.0"}, body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: botocore reuses its pooled connections
    server_version = "lineage-intake-local-dynamodb"
    #: Buffered: the status line, headers and body leave in one send (``handle_one_request`` flushes), not one
    #: send per header line, each releasing and re-taking the GIL.
    wbufsize = 64 * 1024

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle wait on small answers

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self._answer(*_json_error(400, "ValidationException", "Content-Length is missing or too large"))
            self.close_connection = True
            return
        body = self.rfile.read(length)
        host = self.headers.get("Host") or f"{self.connection.getsockname()[0]}:{self.connection.getsockname()[1]}"
        try:
            answer = dispatch(self.command, self.path, list(self.headers.items()), body, host)
        except Exception as exc:  # a bug in moto or here: a 500 that botocore reports, never a dropped connection
            answer = _json_error(500, "InternalFailure", f"{type(exc).__name__}: {exc}")
        self._answer(*answer)

    def do_GET(self) -> None:
        self._answer(*_json_error(400, "UnknownOperationException", "DynamoDB takes POST requests only"))

    def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """No access log lines (moto's server is quiet in the stack too)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # an idle keep-alive connection must not hold up the stop
    allow_reuse_address = False


class DynamoDBEndpoint:
    """``start()`` binds 127.0.0.1 on a free port (or ``port``) and serves until ``stop()``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the DynamoDB endpoint is not started")
        host, port = self._server.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> DynamoDBEndpoint:
        self._server = _Server((self.host, self.port), _Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="local-dynamodb", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with contextlib.suppress(OSError):
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None
