"""``lineage-intake ui-proxy`` between a client and two recording servers (the API and the UI's own server):
the read token is added for ``/api/v1/*`` only, never sent to another host, never logged."""

from __future__ import annotations

import http.client
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from lineage_intake_tools.ui_proxy import ProxyConfig, Target, resolve_config, serve

TOKEN = "li_read_secret_token_value"


class Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]]

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})
        payload = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


def start(server: ThreadingHTTPServer) -> ThreadingHTTPServer:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def servers() -> Iterator[dict[str, Any]]:
    api_seen: list[dict[str, Any]] = []
    ui_seen: list[dict[str, Any]] = []
    api = start(ThreadingHTTPServer(("127.0.0.1", 0), type("Api", (Recorder,), {"seen": api_seen})))
    ui = start(ThreadingHTTPServer(("127.0.0.1", 0), type("Ui", (Recorder,), {"seen": ui_seen})))
    log = io.StringIO()
    config = ProxyConfig(
        api=Target.parse(f"http://127.0.0.1:{api.server_address[1]}", "--api-url"),
        token=TOKEN,
        upstream=Target.parse(f"http://127.0.0.1:{ui.server_address[1]}", "--upstream"),
    )
    proxy = start(serve(config, 0, log))
    yield {"proxy": proxy.server_address[1], "api": api_seen, "ui": ui_seen, "log": log, "config": config}
    for server in (proxy, api, ui):
        server.shutdown()
        server.server_close()


def request(port: int, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


def test_api_requests_get_the_read_token_and_keep_path_and_query(servers) -> None:
    # Given the proxy; When the UI's server asks for an API path with an unencoded search query
    status, body = request(servers["proxy"], "GET", "/api/v1/search?q=orders%207&sort=NAME")
    # Then the API got it verbatim, with the bearer token
    assert status == 200 and body == {"path": "/api/v1/search?q=orders%207&sort=NAME"}
    (seen,) = servers["api"]
    assert seen["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert servers["ui"] == []


def test_a_callers_own_authorization_is_replaced_on_api_requests(servers) -> None:
    request(servers["proxy"], "DELETE", "/api/v1/namespaces/n/jobs/j", {"Authorization": "Bearer someone-else"})
    (seen,) = servers["api"]
    assert seen["method"] == "DELETE" and seen["headers"]["Authorization"] == f"Bearer {TOKEN}"


def test_other_paths_go_to_the_upstream_unchanged_and_without_the_token(servers) -> None:
    # Given the proxy with an upstream; When the browser asks for the UI's page and assets
    for path in ("/", "/datasets?x=1", "/api/v2beta/search", "/api/v1x"):
        status, body = request(servers["proxy"], "GET", path, {"Cookie": "session=1"})
        assert status == 200 and body == {"path": path}
    # Then the upstream got them as sent (its own headers kept), and never the token
    assert [s["path"] for s in servers["ui"]] == ["/", "/datasets?x=1", "/api/v2beta/search", "/api/v1x"]
    assert all("Authorization" not in s["headers"] and s["headers"]["Cookie"] == "session=1" for s in servers["ui"])
    assert servers["api"] == []


def test_without_an_upstream_other_paths_are_404_in_marquez_error_shape() -> None:
    config = ProxyConfig(api=Target.parse("http://127.0.0.1:9", "--api-url"), token=TOKEN)
    proxy = start(serve(config, 0, io.StringIO()))
    try:
        status, body = request(proxy.server_address[1], "GET", "/index.html")
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert status == 404 and body["code"] == 404 and "--upstream" in body["message"] and body["details"] is None


def test_an_unreachable_api_is_a_502_that_names_it_not_the_token() -> None:
    config = ProxyConfig(api=Target.parse("http://127.0.0.1:9", "--api-url"), token=TOKEN)
    log = io.StringIO()
    proxy = start(serve(config, 0, log))
    try:
        status, body = request(proxy.server_address[1], "GET", "/api/v1/namespaces")
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert status == 502 and "lineage-intake API" in body["message"] and TOKEN not in json.dumps(body)
    assert TOKEN not in log.getvalue()


def test_the_token_never_appears_in_the_log_or_the_config_repr(servers) -> None:
    request(servers["proxy"], "GET", f"/api/v1/namespaces?token={TOKEN}")
    log = servers["log"].getvalue()
    assert "GET /api/v1/namespaces 200" in log
    assert TOKEN not in log and TOKEN not in repr(servers["config"])


def test_settings_come_from_options_then_the_environment_and_are_checked() -> None:
    env = {"OPENLINEAGE_URL": "http://127.0.0.1:3000", "LINEAGE_READ_TOKEN": "from-env"}
    assert resolve_config(None, None, None, env).token == "from-env"
    assert resolve_config("https://x.example.com/prod", "opt", None, env).api == Target(
        "https", "x.example.com", 443, "/prod"
    )
    with pytest.raises(ValueError, match="--token"):
        resolve_config("http://127.0.0.1:3000", None, None, {})
    with pytest.raises(ValueError, match="--api-url"):
        resolve_config("ftp://x", "t", None, {})
