"""The local front over a real socket, as strict as API Gateway: read timeouts, JSON for every error status,
no routing for non-canonical paths, and a client that goes away costs one log line.

The front runs with a one-second read timeout and a stand-in function, so each case takes about a second.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from lineage_intake_tools.local.front import Gateway, HttpFront, Route

ROUTES = [Route("POST", "/api/v1/lineage", "IngestFunction")]
READ_TIMEOUT = 1.0


class Recorder:
    """The front's log and the functions it called; the function answers after ``delay`` seconds."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []
        self.calls: list[str] = []
        self.delay = 0.0

    def log(self, level: str, message: str, fields: dict[str, Any]) -> None:
        self.lines.append((level, message, fields))

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        self.calls.append(event["rawPath"])
        time.sleep(self.delay)
        return {"statusCode": 200, "body": '{"status":"accepted"}'}


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def front(recorder: Recorder) -> Iterator[HttpFront]:
    gateway = Gateway(ROUTES, None, recorder.invoke, recorder.log)
    server = HttpFront(gateway, read_timeout=READ_TIMEOUT)
    server.start()
    try:
        yield server
    finally:
        server.stop(grace_seconds=1)


def exchange(front: HttpFront, wire: bytes, wait: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read until the server closes or the answer is complete; (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", front.port), timeout=wait) as sock:
        sock.sendall(wire)
        data = b""
        while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


def _length(data: bytes) -> int:
    for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 1 << 30


def post(target: str, body: bytes = b"{}", extra: bytes = b"") -> bytes:
    head = f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + extra + b"\r\n" + body


def test_a_body_shorter_than_its_content_length_gets_408_in_json_within_the_read_timeout(front, recorder) -> None:
    # Given a request that announces 100 bytes and sends 5
    wire = b'POST /api/v1/lineage HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"a":'
    # When it is sent and the client waits
    started = time.monotonic()
    status, headers, body = exchange(front, wire)
    # Then the front answers 408 in JSON once the read timeout passes, closes, and never calls the function
    assert (status, json.loads(body)) == (408, {"message": "Request Timeout"})
    assert headers["connection"] == "close"
    assert READ_TIMEOUT <= time.monotonic() - started < READ_TIMEOUT + 3
    assert recorder.calls == []


def test_a_body_that_trickles_in_slower_than_the_read_timeout_in_total_gets_408(front, recorder) -> None:
    # Given a client that sends a 4-byte body one byte every 0.4 s (each read is quick, the whole is slow)
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as sock:
        sock.sendall(b"POST /api/v1/lineage HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
        for byte in b"{}  ":
            time.sleep(0.4)
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
        answer = sock.recv(65536)
    # Then the front answers 408 without calling the function
    assert answer.startswith(b"HTTP/1.1 408")
    assert recorder.calls == []


@pytest.mark.parametrize(
    "extra",
    [b"X-Big: " + b"a" * 70_000 + b"\r\n", b"".join(b"X-H%d: v\r\n" % i for i in range(120))],
    ids=["one header of 70 KB", "120 headers"],
)
def test_oversized_headers_get_431_in_json_not_html(front, recorder, extra: bytes) -> None:
    # When the headers are over http.server's limits
    status, headers, body = exchange(front, post("/api/v1/lineage", extra=extra))
    # Then the answer is 431 with a JSON body, and the function is not called
    assert status == 431
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"message": "Request Header Fields Too Large"}
    assert recorder.calls == []


@pytest.mark.parametrize(
    ("wire", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"POST /api/v1/lineage HTTP/9.9\r\n\r\n", 505),
        (b"BREW /api/v1/lineage HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    ],
    ids=["a request line that is not HTTP", "an HTTP version from the future", "an unknown method"],
)
def test_every_error_status_of_the_front_itself_has_a_json_body(front, recorder, wire: bytes, status: int) -> None:
    # When a request http.server itself refuses is sent
    got, headers, body = exchange(front, wire)
    # Then the status is the expected one, with {"message": ...} in JSON
    assert got == status
    assert headers["content-type"] == "application/json"
    assert set(json.loads(body)) == {"message"}


@pytest.mark.parametrize(
    "target",
    [
        "//api/v1/lineage",
        "/api//v1/lineage",
        "/api/v1/./lineage",
        "/api/v1/x/../lineage",
        "http://127.0.0.1/api/v1/lineage",
        "api/v1/lineage",
    ],
)
def test_a_non_canonical_target_matches_no_route(front, recorder, target: str) -> None:
    # When a route's path is written in a form API Gateway would not route
    status, _, body = exchange(front, post(target))
    # Then it is 404 Not Found in JSON, and the function is never called
    assert (status, json.loads(body)) == (404, {"message": "Not Found"})
    assert recorder.calls == []


def test_the_canonical_target_is_still_routed(front, recorder) -> None:
    # When the route's path is sent as written in the template, with a query string
    status, _, body = exchange(front, post("/api/v1/lineage?x=1"))
    # Then the function answers
    assert (status, json.loads(body)) == (200, {"status": "accepted"})
    assert recorder.calls == ["/api/v1/lineage"]


def test_a_client_that_disconnects_before_the_answer_costs_one_log_line_and_no_traceback(
    front, recorder, capfd
) -> None:
    # Given a function that takes 0.5 s
    recorder.delay = 0.5
    # When a client sends a request and closes its socket at once, resetting the connection
    sock = socket.create_connection(("127.0.0.1", front.port))
    sock.sendall(post("/api/v1/lineage"))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()
    deadline = time.monotonic() + 5
    while not any(m == "client disconnected" for _, m, _ in recorder.lines) and time.monotonic() < deadline:
        time.sleep(0.05)
    # Then the front logs one structured line for it, and nothing reaches stderr
    disconnects = [f for _, m, f in recorder.lines if m == "client disconnected"]
    assert len(disconnects) == 1
    assert disconnects[0]["error"] in ("BrokenPipeError", "ConnectionResetError")
    assert "Traceback" not in capfd.readouterr().err
    # And the front still serves the next client
    assert exchange(front, post("/api/v1/lineage"))[0] == 200


def test_a_request_in_flight_when_the_front_stops_does_not_hold_the_stop(front, recorder) -> None:
    # Given a request whose function takes 3 s
    recorder.delay = 3.0
    thread = threading.Thread(target=lambda: _quietly(exchange, front, post("/api/v1/lineage")), daemon=True)
    thread.start()
    while not recorder.calls:
        time.sleep(0.01)
    # When the front stops with a one-second grace
    started = time.monotonic()
    front.stop(grace_seconds=1)
    # Then the stop returns after about the grace, not after the function
    assert time.monotonic() - started < 2.5


def _quietly(fn: Any, *args: Any) -> None:
    with contextlib.suppress(OSError, IndexError, ValueError):
        fn(*args)
