"""The event log's pure parts: names read from invalid events, namespace rewrite, filters, times, DLQ targets,
and the local front's access log line in the template's format."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lineage_intake.service.eventlog import Filters
from lineage_intake.service.quarantine import identify
from lineage_intake.service.redrive import Target, targets_of
from lineage_intake.service.replay import rewrite_namespace
from lineage_intake.store.deadletter import DeadLetter
from lineage_intake_tools.cli.base import CliError
from lineage_intake_tools.cli.events import parse_moment
from lineage_intake_tools.cli.logs import CloudWatchLogs
from lineage_intake_tools.local.front import Gateway, IncomingRequest
from lineage_intake_tools.local.logfiles import access_log_format, access_log_group, function_log_groups
from lineage_intake_tools.local.template import load_template
from lineage_intake_tools.logs_insights import saved_queries

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def test_identify_reads_the_names_of_an_invalid_event_and_skips_what_is_not_text() -> None:
    # Given an event without runId and with a numeric job name
    raw = {"job": {"namespace": "dbt", "name": 7}, "run": {}, "eventType": "START", "producer": "dbt-ol"}
    # Then the names that are text are kept, the others left out
    assert identify(raw) == {"namespace": "dbt", "eventType": "START", "producer": "dbt-ol"}
    assert identify(["not", "an", "object"]) == {}


def test_rewrite_namespace_changes_only_the_job_namespace_and_leaves_dataset_events_alone() -> None:
    event = {"job": {"namespace": "dbt", "name": "orders"}, "run": {"runId": "r"}}
    assert rewrite_namespace(event, "production") == {
        "job": {"namespace": "production", "name": "orders"},
        "run": {"runId": "r"},
    }
    assert event["job"]["namespace"] == "dbt"  # the original is not modified
    dataset_event = {"dataset": {"namespace": "s3://b", "name": "t"}}
    assert rewrite_namespace(dataset_event, "production") == dataset_event


def test_filters_keep_only_matching_names_within_the_window() -> None:
    view = {"namespace": "dbt", "job": "orders", "runId": "ABC", "receivedAt": "2026-11-21T11:30:00.000000Z"}
    assert Filters(namespace="dbt", job="orders").keep(view)
    assert not Filters(namespace="default").keep(view)
    assert not Filters(since=NOW).keep(view)
    assert Filters(since=datetime(2026, 11, 21, 11, tzinfo=UTC), until=NOW).keep(view)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", datetime(2026, 11, 21, 10, 0, tzinfo=UTC)),
        ("30m", datetime(2026, 11, 21, 11, 30, tzinfo=UTC)),
        ("7d", datetime(2026, 11, 14, 12, 0, tzinfo=UTC)),
        ("2026-11-20T08:00:00", datetime(2026, 11, 20, 8, 0, tzinfo=UTC)),
        ("2026-11-20T08:00:00+01:00", datetime(2026, 11, 20, 7, 0, tzinfo=UTC)),
    ],
)
def test_times_are_relative_or_iso_and_utc_without_an_offset(text: str, expected: datetime) -> None:
    assert parse_moment(text, NOW) == expected


def test_an_unreadable_time_is_a_usage_error_naming_the_value() -> None:
    with pytest.raises(CliError, match="yesterday"):
        parse_moment("yesterday", NOW)


def test_a_dead_letter_names_each_run_dataset_and_job_once() -> None:
    letter = DeadLetter("m", "h", {})
    letter.images = [
        {"kind": "RUN", "namespace": "ns", "job": "j", "runId": "r"},
        {"kind": "RUN", "namespace": "ns", "job": "j", "runId": "r"},
        {"kind": "DATASET", "namespace": "s3://b", "dataset": "t"},
        {"kind": "JOB", "namespace": "ns", "job": "k"},
        {"kind": "REJECTED", "namespace": "ns", "job": "x"},
    ]
    assert targets_of(letter) == [
        Target("RUN", "ns", "j", "r"),
        Target("DATASET", "s3://b", "t"),
        Target("JOB", "ns", "k"),
    ]


def test_the_local_front_writes_access_lines_in_the_templates_format() -> None:
    # Given a gateway whose access log is the template's format, collected in a list
    template = load_template()
    lines: list[str] = []
    gateway = Gateway([], None, lambda *_: None, lambda *_: None)
    gateway.access_format, gateway.access_log = access_log_format(template) or "", lines.append
    request = IncomingRequest(
        method="POST",
        target="/api/v1/lineage",
        protocol="HTTP/1.1",
        headers=[("User-Agent", 'dbt-ol "1.0"')],
        body=b"",
        source_ip="127.0.0.1",
        port=3000,
        request_id="rid",
        received_at=NOW,
    )
    # When a request denied by the authorizer (no integration) is logged
    gateway.write_access_line(request, 401, 1.4, 26)
    # Then the line is JSON with every field of the format, `-` where API Gateway has no value
    (line,) = [json.loads(x) for x in lines]
    assert line["requestId"] == "rid" and line["status"] == "401" and line["responseLength"] == "26"
    assert line["requestTime"] == "21/Nov/2026:12:00:00 +0000"
    assert line["userAgent"] == 'dbt-ol "1.0"'
    assert line["integrationStatus"] == "-" and line["tokenId"] == "-" and line["routeKey"] == "-"


def test_every_function_and_the_api_have_a_log_group_for_the_local_log_files() -> None:
    template = load_template()
    assert function_log_groups(template) == {
        "IngestFunction": "IngestLogGroup",
        "AuthorizerFunction": "AuthorizerLogGroup",
        "MergeFunction": "MergeLogGroup",
        "StartGraceFunction": "StartGraceLogGroup",
        "ApiFunction": "ApiLogGroup",
    }
    assert access_log_group(template) == "HttpApiAccessLogGroup"


class FakeLogsClient:
    """Logs Insights' two calls, answering a running query once, then its rows."""

    def __init__(self, rows: list[list[dict[str, str]]]) -> None:
        self.rows = rows
        self.started: list[dict[str, Any]] = []
        self.polls = 0

    def start_query(self, **kwargs: Any) -> dict[str, str]:
        self.started.append(kwargs)
        return {"queryId": "q-1"}

    def get_query_results(self, queryId: str) -> dict[str, Any]:
        self.polls += 1
        if self.polls == 1:
            return {"status": "Running", "results": []}
        return {"status": "Complete", "results": self.rows}


def test_a_deployed_stacks_saved_query_runs_on_its_log_groups_with_the_templates_text(monkeypatch) -> None:
    # Given a stack whose outputs name its log groups, and Logs Insights answering one row
    monkeypatch.setattr("lineage_intake_tools.cli.logs.time.sleep", lambda _s: None)
    client = FakeLogsClient([[{"field": "tokenId", "value": "3f9c"}, {"field": "@ptr", "value": "x"}]])
    groups = {"HttpApiAccessLogGroup": "/aws/vendedlogs/s-http-api-access", "AuthorizerLogGroup": "/aws/lambda/s-a"}
    source = CloudWatchLogs(client, groups, "s")
    query = saved_queries()["denials-by-token"]
    # When the query runs for the last hour
    rows = source.run(query, datetime(2026, 11, 21, 11, tzinfo=UTC), NOW)
    # Then Logs Insights got the query's own log groups, the window in epoch seconds and the template's text
    (call,) = client.started
    assert call["logGroupNames"] == [groups[g] for g in query.log_groups]
    assert (call["startTime"], call["endTime"]) == (int(NOW.timestamp()) - 3600, int(NOW.timestamp()))
    assert call["queryString"] == query.query
    # And the rows come back as plain dicts without the internal pointer
    assert rows == [{"tokenId": "3f9c"}]


def test_a_query_on_a_log_group_the_stack_does_not_name_fails_with_the_group() -> None:
    source = CloudWatchLogs(FakeLogsClient([]), {}, "s")
    with pytest.raises(CliError, match="IngestLogGroup"):
        source.run(saved_queries()["rejections"], NOW, NOW)


def test_lines_printed_by_several_threads_of_a_worker_never_run_into_each_other(tmp_path: Path) -> None:
    import io
    import threading

    from lineage_intake_tools.local.logfiles import LineAppender, Tee

    # Given a worker's stdout as the local stack sets it up, and 8 threads that print JSON lines at once
    original = io.StringIO()
    tee = Tee(original, LineAppender(tmp_path / "MergeLogGroup.log"))

    def emit(worker: int) -> None:
        for i in range(200):
            print(json.dumps({"worker": worker, "i": i, "pad": "x" * 300}), file=tee)

    threads = [threading.Thread(target=emit, args=(w,)) for w in range(8)]
    # When they all print
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tee.appender.close()
    # Then every line of both copies is one whole JSON object, and none is missing
    for text in (original.getvalue(), (tmp_path / "MergeLogGroup.log").read_text()):
        lines = text.splitlines()
        assert len(lines) == 1600
        assert {(r["worker"], r["i"]) for r in map(json.loads, lines)} == {(w, i) for w in range(8) for i in range(200)}


def test_an_event_received_during_the_last_second_of_the_window_is_listed() -> None:
    # Given a window that ends at 13:09:35, and an event received at 13:09:35.185
    until = datetime(2026, 11, 21, 13, 9, 35, 900_000, tzinfo=UTC)
    filters = Filters(until=until)
    # When the event log filters it
    # Then it is inside the window (a listing right after a POST must show the event)
    assert filters.keep({"receivedAt": "2026-11-21T13:09:35.185628Z"})
    assert not filters.keep({"receivedAt": "2026-11-21T13:09:36.000001Z"})
