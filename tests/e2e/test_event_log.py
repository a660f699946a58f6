"""The event log on the local stack (``make run``): quarantine, replay, the access log and the saved queries,
driven over HTTP and through the ``lineage-intake`` console script, as an operator would."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from tests.helpers.local_stack import RunningStack
from tests.helpers.stack_client import cli_json, fresh_run, post, stored_events, wait_merged


def with_job_namespace(event: dict[str, Any], namespace: str) -> dict[str, Any]:
    return {**event, "job": {**event["job"], "namespace": namespace}}


def access_lines(stack: RunningStack) -> list[dict[str, Any]]:
    path = Path(stack.env["LINEAGE_LOGS_DIR"]) / "HttpApiAccessLogGroup.log"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_a_forbidden_event_is_listed_with_its_reason_and_replayed_once_after_the_scope_is_fixed(
    local_stack: RunningStack,
) -> None:
    # Given a producer whose token writes `home`, sending a run into `dbt` (dbt-ol's default namespace)
    home, dbt = f"home-{uuid.uuid4().hex[:8]}", f"dbt-{uuid.uuid4().hex[:8]}"
    cli_json(local_stack, "connections", "create", home)
    issued = cli_json(local_stack, "tokens", "create", "--connection", home)
    start, complete = (with_job_namespace(e, dbt) for e in fresh_run(local_stack))
    job, run_id = start["job"]["name"], start["run"]["runId"]
    # When it posts the run
    answers = [post(local_stack, json.dumps(e), issued["token"]) for e in (start, complete)]
    # Then both events get ingest's 403, and the event log shows them rejected with the reason
    assert [a.status_code for a in answers] == [403, 403]
    rejected = cli_json(local_stack, "events", "list", "--status", "rejected", "--namespace", dbt)
    assert [(r["eventType"], r["reason"], r["job"]) for r in rejected] == [
        ("START", "forbidden", job),
        ("COMPLETE", "forbidden", job),
    ]
    assert "not writable" in rejected[0]["detail"]
    # When the operator replays before fixing anything, the events are still refused, with the reason
    early = cli_json(local_stack, "events", "replay", "--namespace", dbt)
    assert early["summary"] == {"replayed": 2, "accepted": 0, "duplicate": 0, "rejected": 2}
    # When the operator creates the connection, widens the token's scope and replays
    cli_json(local_stack, "connections", "create", dbt)
    cli_json(local_stack, "tokens", "scope", issued["tokenId"], "--add", dbt)
    first = cli_json(local_stack, "events", "replay", "--namespace", dbt)
    second = cli_json(local_stack, "events", "replay", "--namespace", dbt)
    # Then the first replay stores both, the second stores nothing new, and each event is stored once
    assert first["summary"] == {"replayed": 2, "accepted": 2, "duplicate": 0, "rejected": 0}
    assert second["summary"] == {"replayed": 2, "accepted": 0, "duplicate": 2, "rejected": 0}
    assert len(stored_events(local_stack, dbt, job, run_id)) == 2
    # And the run merges like any other, and `events show` names that merge
    wait_merged(local_stack, dbt, job, run_id)
    shown = cli_json(local_stack, "events", "show", first["events"][1]["eventId"])
    assert shown["status"] == "accepted" and shown["body"]["eventType"] == "COMPLETE"
    assert shown["merge"]["status"] == "merged" and shown["merge"]["state"] == "COMPLETE"


def test_an_invalid_event_is_quarantined_with_its_field_errors(local_stack: RunningStack) -> None:
    # Given an event without run.runId in the stack's namespace
    start, _ = fresh_run(local_stack)
    del start["run"]["runId"]
    # When it is posted
    answer = post(local_stack, json.dumps(start), local_stack.api_key)
    # Then the answer is 400 and the quarantine holds it with the field errors
    assert answer.status_code == 400
    rejected = cli_json(local_stack, "events", "list", "--status", "rejected", "--job", start["job"]["name"])
    (item,) = rejected
    assert item["reason"] == "invalid_event"
    assert {"path": "run.runId", "message": "Field required"} in item["errors"]


def test_an_unauthenticated_request_is_not_stored_but_is_in_the_access_log(local_stack: RunningStack) -> None:
    # Given a request without a token
    start, _ = fresh_run(local_stack)
    # When it is posted
    answer = post(local_stack, json.dumps(start), token=None)
    # Then the gateway answers 401, nothing is stored or quarantined
    assert answer.status_code == 401
    assert stored_events(local_stack, start["job"]["namespace"], start["job"]["name"], start["run"]["runId"]) == []
    assert cli_json(local_stack, "events", "list", "--job", start["job"]["name"]) == []
    # And the access log has its line: no route integration, no token, the request id of the answer
    request_id = answer.headers["apigw-requestid"]
    (line,) = [x for x in access_lines(local_stack) if x["requestId"] == request_id]
    assert line["status"] == "401" and line["integrationStatus"] == "-" and line["tokenId"] == "-"
    assert line["routeKey"] == "POST /api/v1/lineage"
    # And the saved query of denials counts it
    denials = cli_json(local_stack, "logs", "denials-by-token", "--since", "1h")
    assert any(row["status"] == "401" and int(row["denials"]) >= 1 for row in denials)


def test_the_fate_of_a_run_through_logs_names_its_events_and_its_merge(local_stack: RunningStack) -> None:
    # Given a run posted and merged
    start, complete = fresh_run(local_stack)
    for event in (start, complete):
        assert post(local_stack, json.dumps(event), local_stack.api_key).status_code == 200
    run_id = start["run"]["runId"]
    wait_merged(local_stack, start["job"]["namespace"], start["job"]["name"], run_id)
    # When the operator asks for the run's fate (the merge logs its line just after its write)
    deadline = time.monotonic() + 10
    rows = cli_json(local_stack, "logs", "event-fate", "--id", run_id, "--since", "1h")
    while not any(r.get("message") == "merge merged" for r in rows) and time.monotonic() < deadline:
        time.sleep(0.2)
        rows = cli_json(local_stack, "logs", "event-fate", "--id", run_id, "--since", "1h")
    # Then it names both events, as accepted by ingest, and the merge that used them
    accepted = [r for r in rows if r.get("message") == "event accepted"]
    assert sorted(r["eventType"] for r in accepted) == ["COMPLETE", "START"]
    assert all(r["eventId"] and r["correlation_id"] for r in accepted)
    merges = [r for r in rows if r.get("message") == "merge merged"]
    assert merges and merges[-1]["state"] == "COMPLETE"
