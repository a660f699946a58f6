"""Talking to a running local stack the way users do: the ``lineage-intake`` console script, HTTP posts, and
polls of its tables. Shared by the end-to-end tests."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests
from lineage_intake import keys
from lineage_intake.store.lineage import LineageStore
from lineage_intake_tools.local.demo import with_namespace

from tests.helpers.corpus import corpus_json
from tests.helpers.local_stack import RunningStack

CLI = Path(sys.executable).with_name("lineage-intake")
START = "openlineage/events/proxy-fluentd/docker/test-start.json"
COMPLETE = "openlineage/events/proxy-fluentd/docker/test-complete.json"
MERGE_TIMEOUT = 15.0


def fresh_run(stack: RunningStack, job: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The START and COMPLETE of the proxy's docker test as a new run of a new job in the stack's namespace."""
    run_id = str(uuid.uuid4())
    job = job or f"e2e-{run_id[:8]}"
    pair = []
    for path in (START, COMPLETE):
        event = with_namespace(corpus_json(path), stack.namespace)
        event["run"]["runId"] = run_id
        event["job"]["name"] = job
        pair.append(event)
    return pair[0], pair[1]


def cli(stack: RunningStack, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The ``lineage-intake`` console script, with the environment of a shell that sourced the env file."""
    assert CLI.exists(), f"the lineage-intake console script is not installed next to {sys.executable}"
    result = subprocess.run(
        [str(CLI), *argv], env=stack.cli_env(), capture_output=True, text=True, timeout=60, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"lineage-intake {' '.join(argv)} failed ({result.returncode}):\n{result.stderr}")
    return result


def cli_json(stack: RunningStack, *argv: str) -> Any:
    return json.loads(cli(stack, *argv, "--json").stdout)


def wait_merged(stack: RunningStack, namespace: str, job: str, run_id: str, state: str = "COMPLETE") -> None:
    """Poll the Lineage table until the run is merged in ``state`` (the CLI then shows the details)."""
    store = LineageStore(stack.client("dynamodb"), stack.env["LINEAGE_LINEAGE_TABLE"])
    deadline = time.monotonic() + MERGE_TIMEOUT
    while time.monotonic() < deadline:
        item = store.get_run(namespace, job, run_id)
        if item is not None and item.get("state") == state:
            return
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} of {namespace}/{job} was not merged as {state} within {MERGE_TIMEOUT} s")


def stored_events(stack: RunningStack, namespace: str, job: str, run_id: str) -> list[dict[str, Any]]:
    answer = stack.client("dynamodb").query(
        TableName=stack.env["LINEAGE_EVENTS_TABLE"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.run_pk(namespace, job, run_id)}},
        ConsistentRead=True,
    )
    return list(answer["Items"])


def post(stack: RunningStack, body: bytes | str, token: str | None, path: str = "/api/v1/lineage") -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(stack.url + path, data=body, headers=headers, timeout=30)
