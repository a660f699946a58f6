"""The quarantine of rejected events, through the ingest handler on moto (docs/operations.md#quarantine)."""

from __future__ import annotations

import json
import logging
import time
from types import ModuleType
from typing import Any

import pytest
from lineage_intake.service.ingest import canonical_json
from lineage_intake.store.events import decode_body

from tests.helpers.aws import TEST_STACK, load_handler
from tests.helpers.corpus import event_file
from tests.helpers.eventlog import cap_counters, is_quarantine_item, quarantined, structured_lines, table_items

EVENTS_TABLE = TEST_STACK.physical_name("EventsTable")


def call(app: ModuleType, event: dict[str, Any], context: Any) -> tuple[int, dict[str, Any]]:
    answer = app.handler(event, context)
    return answer["statusCode"], json.loads(answer["body"])


def metric_names(output: str) -> list[str]:
    names: list[str] = []
    for line in output.splitlines():
        if line.startswith('{"_aws"'):
            blob = json.loads(line)
            names += [m["Name"] for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
    return names


def rejected_line(app: ModuleType, caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    (line,) = [x for x in structured_lines(app, caplog) if x["message"] == "event rejected"]
    return line


def test_an_invalid_event_is_quarantined_with_its_field_errors(capsys, caplog, ingest, lambda_context, aws) -> None:
    caplog.set_level(logging.INFO)
    # Given the invalid request of events/ (no run.runId)
    request = event_file("ingest-invalid.json")
    # When ingest handles it
    status, body = call(ingest, request, lambda_context)
    # Then the producer's answer is the usual 400
    assert status == 400 and body["error"] == "invalid_event"
    # And the event is kept with its reason, field errors, token, names, size and a TTL
    (item,) = quarantined(aws, EVENTS_TABLE)
    assert item["kind"] == "REJECTED"
    assert item["reason"] == "invalid_event"
    assert item["errors"] == [{"path": "run.runId", "message": "Field required"}]
    assert item["tokenId"] == "tok_sample" and item["connections"] == ["default", "my-namespace"]
    sent = json.loads(request["body"])
    assert item["namespace"] == sent["job"]["namespace"] and item["job"] == sent["job"]["name"]
    assert item["size"] == len(canonical_json(sent))
    # And the stored body is the event as sent
    assert json.loads(decode_body(bytes(item["body"]))) == sent
    # And the log line and the metrics say it was kept
    line = rejected_line(ingest, caplog)
    assert line["quarantined"] == "kept" and line["tokenId"] == "tok_sample"
    assert "EventsQuarantined" in metric_names(capsys.readouterr().out)


def test_a_forbidden_event_is_quarantined_with_its_reason_and_its_ttl(ingest, lambda_context, aws) -> None:
    # Given an event whose namespace the token may not write
    status, _ = call(ingest, event_file("ingest-forbidden.json"), lambda_context)
    # Then the answer is 403 as before, and the event is kept for 14 days (RejectedRetentionDays' default)
    assert status == 403
    (item,) = quarantined(aws, EVENTS_TABLE)
    assert item["reason"] == "forbidden"
    assert "not writable" in item["detail"]
    received_epoch = item["expiresAt"] - 14 * 86_400
    assert abs(received_epoch - int(time.time())) < 60
    # And no event was stored, only the quarantine item and the token's daily counter
    assert all(is_quarantine_item(i) for i in table_items(aws, EVENTS_TABLE))


def test_the_per_token_daily_cap_holds_and_drops_are_counted(capsys, stack, monkeypatch, lambda_context, aws) -> None:
    # Given a cap of 2 rejected events per token and day
    app = load_handler(stack, "IngestFunction", monkeypatch, QUARANTINE_DAILY_CAP_PER_TOKEN="2")
    base = json.loads(event_file("ingest-forbidden.json")["body"])
    # When the token sends 5 different forbidden events
    for n in range(5):
        request = event_file("ingest-forbidden.json")
        request["body"] = json.dumps({**base, "eventTime": f"2026-01-01T00:00:0{n}Z"})
        assert call(app, request, lambda_context)[0] == 403  # the answer never changes
    # Then 2 are kept, the counter stops at 2, and 3 drops are counted
    assert len(quarantined(aws, EVENTS_TABLE)) == 2
    (counter,) = cap_counters(aws, EVENTS_TABLE)
    assert counter["n"] == 2
    assert metric_names(capsys.readouterr().out).count("QuarantineDropped") == 3


def test_a_failing_quarantine_never_changes_the_answer(capsys, caplog, ingest, lambda_context, monkeypatch) -> None:
    caplog.set_level(logging.INFO)

    # Given a quarantine whose storage fails
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("table gone")

    monkeypatch.setattr(ingest.service().quarantine.store, "put", broken)
    # When a forbidden event arrives
    status, body = call(ingest, event_file("ingest-forbidden.json"), lambda_context)
    # Then the producer still gets the 403, and the failure is logged and counted
    assert status == 403 and body["error"] == "forbidden"
    line = rejected_line(ingest, caplog)
    assert line["quarantined"] == "failed" and line["quarantineError"] == "RuntimeError"
    assert "QuarantineFailed" in metric_names(capsys.readouterr().out)


def test_a_request_without_authorizer_context_is_never_quarantined(ingest, lambda_context, aws) -> None:
    # Given a request that no authorizer vouched for
    request = event_file("ingest-forbidden.json")
    del request["requestContext"]["authorizer"]
    # When ingest refuses it
    assert call(ingest, request, lambda_context)[0] == 403
    # Then nothing at all is stored
    assert table_items(aws, EVENTS_TABLE) == []
