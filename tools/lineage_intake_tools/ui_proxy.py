"""``lineage-intake ui-proxy``: lets Marquez's web UI read a lineage-intake stack (issue 14).

The UI's server proxies ``/api/v1`` to ``MARQUEZ_HOST:MARQUEZ_PORT`` without any header, so it cannot present
a token. This proxy listens on 127.0.0.1 only, forwards ``/api/v1/*`` to the stack's API URL with
``Authorization: Bearer <read token>`` (replacing any the caller sent), and sends every other path to
``--upstream`` unchanged (the UI's own server, when it is run behind this proxy), or answers 404 in Marquez's
error shape when there is none. The token goes to the configured API host only: the target is fixed at start,
redirects are passed back to the caller and never followed, and the request log holds method, path and status,
never headers. Standard library only (``ThreadingHTTPServer`` + ``http.client``). README "Browse with Marquez's UI".
"""

from __future__ import annotations

import http.client
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import urlsplit

API_PREFIX = "/api/v1"
LISTEN_HOST = "127.0.0.1"
TIMEOUT_SECONDS = 30.0
#: Hop-by-hop headers (RFC 9110 7.6.1) are the proxy's own, never forwarded either way.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade"}
)  # fmt: skip


@dataclass(frozen=True)
class Target:
    """Where requests go: scheme, host, port and the URL's path prefix (a stage name, for instance)."""

    scheme: str
    host: str
    port: int
    base_path: str

    @classmethod
    def parse(cls, url: str, option: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"{option}: must be an http(s) URL such as https://abc.execute-api.eu-west-1.amazonaws.com"
            )
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))

    def connection(self) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        return kind(self.host, self.port, timeout=TIMEOUT_SECONDS)

    @property
    def netloc(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ProxyConfig:
    api: Target
    token: str
    upstream: Target | None = None

    def __repr__(self) -> str:  # never print the token, even by accident
        return f"ProxyConfig(api={self.api!r}, token='***', upstream={self.upstream!r})"


class ProxyHandler(BaseHTTPRequestHandler):
    """One request: to the API with the token, to the upstream unchanged, or a 404."""

    config: ProxyConfig
    log_stream: TextIO = sys.stderr
    protocol_version = "HTTP/1.1"

    def _forward(self) -> None:
        path = self.path if self.path.startswith("/") else "/"
        is_api = path == API_PREFIX or path.startswith((API_PREFIX + "/", API_PREFIX + "?"))
        target = self.config.api if is_api else self.config.upstream
        if target is None:
            self._not_found(path)
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() != "host"}
        if is_api:
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            headers["Authorization"] = f"Bearer {self.config.token}"
        headers["Host"] = target.netloc
        connection = target.connection()
        try:
            connection.request(self.command, target.base_path + path, body=body, headers=headers)
            answer = connection.getresponse()
            payload = answer.read()
            self._reply(answer.status, answer.getheaders(), payload)
        except (OSError, http.client.HTTPException) as exc:
            where = "the lineage-intake API" if is_api else "the upstream"
            self._json(502, f"ui-proxy could not reach {where} at {target.netloc}: {type(exc).__name__}")
        finally:
            connection.close()

    def _reply(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _json(self, status: int, message: str) -> None:
        body = json.dumps({"code": status, "message": message, "details": None}).encode()
        self._reply(status, [("Content-Type", "application/json")], body)

    def _not_found(self, path: str) -> None:
        self._json(
            404,
            f"ui-proxy serves {API_PREFIX}/* only (no --upstream was given for other paths such as "
            f"{path.split('?', 1)[0][:100]!r})",
        )

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _forward

    def log_message(self, format: str, *args: Any) -> None:
        """Method, path (without its query) and status only: never headers, so never the token."""
        self.log_stream.write(
            f"ui-proxy {self.command} {self.path.split('?', 1)[0]} {args[1] if len(args) > 1 else ''}\n"
        )


def serve(config: ProxyConfig, port: int, log_stream: TextIO = sys.stderr) -> ThreadingHTTPServer:
    """A started-but-not-serving server on 127.0.0.1:``port`` (0: any free port); call ``serve_forever``."""
    handler = type("Handler", (ProxyHandler,), {"config": config, "log_stream": log_stream})
    server = ThreadingHTTPServer((LISTEN_HOST, port), handler)
    server.daemon_threads = True
    return server


def resolve_config(api_url: str | None, token: str | None, upstream: str | None, env: Mapping[str, str]) -> ProxyConfig:
    """The options, else the environment (``OPENLINEAGE_URL``, ``LINEAGE_READ_TOKEN``: what the env file holds)."""
    url = api_url or env.get("LINEAGE_API_URL") or env.get("OPENLINEAGE_URL")
    if not url:
        raise ValueError("--api-url: give the stack's API URL (or set OPENLINEAGE_URL, or pass --env-file)")
    secret = token or env.get("LINEAGE_READ_TOKEN")
    if not secret:
        raise ValueError("--token: give a read token (or set LINEAGE_READ_TOKEN, or pass --env-file)")
    return ProxyConfig(
        api=Target.parse(url, "--api-url"),
        token=secret,
        upstream=Target.parse(upstream, "--upstream") if upstream else None,
    )
