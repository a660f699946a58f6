"""Hostile input through the whole local stack (HTTP front, authorizer, ingest): the known crash inputs get
their 4xx over HTTP too, and the two poison runs of issue 13 are refused without delaying an ordinary run."""

from __future__ import annotations

import copy
import json
import uuid

import pytest
import requests

from tests.helpers.hostile import CRASH_INPUTS, minimal_event
from tests.helpers.local_stack import RunningStack, seconds_until_merged


def send(stack: RunningStack, data: bytes, headers: dict[str, str], path: str = "/api/v1/lineage") -> requests.Response:
    headers = headers | {"Authorization": f"Bearer {stack.api_key}"}
    return requests.post(stack.url + path, data=data, headers=headers, timeout=30)


@pytest.mark.parametrize("name", list(CRASH_INPUTS))
def test_each_known_crash_input_gets_its_4xx_through_the_gateway(local_stack: RunningStack, name: str) -> None:
    # Given one of the inputs that answered 500 before the limits
    body, status, word = CRASH_INPUTS[name]
    # When a client posts it to the local stack
    answer = send(local_stack, body.data, body.headers, body.path)
    # Then the gateway passes ingest's JSON answer back, with the expected status and the problem named
    assert answer.status_code == status, answer.text
    assert word.lower() in answer.text.lower()


def _run(stack: RunningStack, **over: object) -> list[dict[str, object]]:
    """START and COMPLETE of a new run in the stack's namespace, with ``over`` on both."""
    start = minimal_event(**over)
    start["run"]["runId"] = str(uuid.uuid4())
    start["job"] = {"namespace": stack.namespace, "name": f"hostile-{start['run']['runId'][:8]}"}
    complete = copy.deepcopy(start) | {"eventType": "COMPLETE", "eventTime": "2024-06-01T10:05:00Z"}
    return [start, complete]


def test_the_poison_runs_are_refused_and_an_ordinary_run_sent_right_after_merges_within_5_s(
    local_stack: RunningStack,
) -> None:
    # Given the two poison runs of issue 13: a schema nested 400 deep, and 10,000 inputs
    deep_schema = "[" * 400 + "]" * 400
    poison_deep = [
        json.dumps(e).replace('"__schema__"', deep_schema)
        for e in _run(
            local_stack, outputs=[{"namespace": "db", "name": "t", "facets": {"schema": {"fields": "__schema__"}}}]
        )
    ]
    inputs = [{"namespace": "db", "name": f"table_{i}"} for i in range(10_000)]
    poison_wide = [json.dumps(e) for e in _run(local_stack, inputs=inputs)]
    headers = {"Content-Type": "application/json"}
    # When they are sent, then each is refused with 400 naming its limit
    for body in poison_deep:
        answer = send(local_stack, body.encode(), headers)
        assert answer.status_code == 400 and "nested" in answer.json()["message"], answer.text
    for body in poison_wide:
        answer = send(local_stack, body.encode(), headers)
        assert answer.status_code == 400 and answer.json()["errors"][0]["path"] == "inputs", answer.text
    # And an ordinary run sent right after them is merged within 5 s
    start, complete = _run(local_stack)
    for event in (start, complete):
        assert send(local_stack, json.dumps(event).encode(), headers).status_code == 200
    job = start["job"]
    assert isinstance(job, dict) and isinstance(start["run"], dict)
    seconds_until_merged(local_stack, job["namespace"], job["name"], start["run"]["runId"], "COMPLETE", limit=5.0)
