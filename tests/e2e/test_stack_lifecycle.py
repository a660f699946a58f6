"""``make run`` as a process: what it writes on start, how Ctrl-C stops it, and that a second start is fresh."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from lineage_intake_tools.local.demo import with_namespace
from lineage_intake_tools.local.template import ROOT

from tests.helpers.corpus import corpus_json
from tests.helpers.local_stack import alive, children_of, start_stack, stop_stack

EXPECTED_KEYS = {
    "OPENLINEAGE_URL",
    "OPENLINEAGE_API_KEY",
    "OPENLINEAGE_NAMESPACE",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "LINEAGE_TOKENS_TABLE",
    "LINEAGE_CONNECTIONS_TABLE",
    "LINEAGE_EVENTS_TABLE",
    "LINEAGE_LINEAGE_TABLE",
    "LINEAGE_BODY_BUCKET",
}


def one_event(namespace: str) -> str:
    event = with_namespace(corpus_json("openlineage/events/proxy-fluentd/docker/test-start.json"), namespace)
    event["run"]["runId"] = str(uuid.uuid4())
    return json.dumps(event)


def test_ctrl_c_stops_everything_cleanly_and_a_second_start_is_fresh(tmp_path: Path) -> None:
    first = start_stack(tmp_path / "first")
    try:
        # The env file: one KEY=VALUE per line, everything the clients and the CLI need, readable by the owner only.
        lines = first.env_file.read_text().splitlines()
        assert all("=" in line and not line.startswith("export ") for line in lines)
        assert set(first.env) >= EXPECTED_KEYS
        assert first.env["OPENLINEAGE_NAMESPACE"] == "default"
        assert first.env["OPENLINEAGE_URL"].startswith("http://127.0.0.1:")
        assert first.env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        assert stat.S_IMODE(first.env_file.stat().st_mode) == 0o600
        # ... and the same lines are printed for copying, then a ready line.
        banner = first.logs()
        assert all(line in banner.splitlines() for line in lines)
        assert "# ready: POST OpenLineage events to" in banner

        headers = {"Authorization": f"Bearer {first.api_key}", "Content-Type": "application/json"}
        answer = requests.post(first.url + "/api/v1/lineage", data=one_event("default"), headers=headers, timeout=30)
        assert answer.status_code == 200
        workers = children_of(first.process.pid)
        assert len(workers) >= 3  # one worker process per function of the template
    finally:
        started = time.monotonic()
        code = stop_stack(first)
    assert time.monotonic() - started < 5  # Ctrl-C stops everything within 5 s
    assert code == 0
    assert not first.env_file.exists()  # nothing points clients at a stopped stack
    assert not any(alive(pid) for pid in workers)
    with pytest.raises(requests.ConnectionError):
        requests.get(first.url, timeout=5)
    assert json.loads(first.logs().splitlines()[-1])["message"] == "local stack stopped"

    second = start_stack(tmp_path / "second")
    try:
        assert second.api_key != first.api_key
        events = second.client("dynamodb").scan(TableName=second.env["LINEAGE_EVENTS_TABLE"])["Items"]
        assert events == []  # nothing persists across restarts
        headers = {"Authorization": f"Bearer {first.api_key}", "Content-Type": "application/json"}
        stale = requests.post(second.url + "/api/v1/lineage", data=one_event("default"), headers=headers, timeout=30)
        assert stale.status_code == 403  # the first run's token does not exist any more
    finally:
        assert stop_stack(second) == 0


def test_the_first_8_concurrent_requests_are_answered_within_5_s_and_sigterm_stops_everything_within_5_s(
    tmp_path: Path,
) -> None:
    # Given a stack that has just written its env file (its ready signal)
    running = start_stack(tmp_path)
    try:
        workers = children_of(running.process.pid)
        headers = {"Authorization": f"Bearer {running.api_key}", "Content-Type": "application/json"}
        # When 8 clients send an event at once, with the Python client's default timeout of 5 s
        with ThreadPoolExecutor(8) as pool:
            started = time.monotonic()
            answers = list(
                pool.map(
                    lambda _: requests.post(
                        running.url + "/api/v1/lineage", data=one_event("default"), headers=headers, timeout=5
                    ),
                    range(8),
                )
            )
            elapsed = time.monotonic() - started
        # Then every one is answered 200 in time: the workers were started before the ready signal
        assert [a.status_code for a in answers] == [200] * 8
        assert elapsed < 5
    finally:
        # When SIGTERM arrives
        started = time.monotonic()
        running.process.send_signal(signal.SIGTERM)
        code = running.process.wait(30)
        stopped_in = time.monotonic() - started
    # Then the process and all its workers are gone within 5 s, cleanly, with no traceback
    assert code == 0
    assert stopped_in < 5, stopped_in
    assert not any(alive(pid) for pid in workers)
    assert not running.env_file.exists()
    assert json.loads(running.logs().splitlines()[-1])["message"] == "local stack stopped"
    assert "Traceback" not in running.errors()


def test_a_busy_port_fails_with_a_message_that_says_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "lineage_intake_tools.local.stack",
                "--port",
                str(port),
                "--env-file",
                str(tmp_path / "e"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            check=False,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "make run PORT=" in result.stderr
    assert not (tmp_path / "e").exists()
