"""The saved Logs Insights queries of template.yaml, run by the local engine over realistic log lines."""

from __future__ import annotations

import json

import pytest
from lineage_intake.errors import FieldError
from lineage_intake.service.ingest import Outcome
from lineage_intake.service.merge import MergeOutcome
from lineage_intake_tools.logs_insights import QueryError, run, saved_queries, saved_query, to_record

from tests.helpers.log_lines import access_line, at, authorizer_line, ingest_line, merge_line

SPARK = "https://github.com/OpenLineage/OpenLineage/tree/1.24.2/integration/spark"
DBT = "https://github.com/OpenLineage/OpenLineage/tree/1.24.2/integration/dbt"
RUN_A = "0193f0a4-5c1e-7d2a-9b3e-000000000001"
RUN_B = "0193f0a4-5c1e-7d2a-9b3e-000000000002"


def _event(
    status: str,
    run_id: str,
    event_type: str,
    *,
    job: str = "etl_orders",
    namespace: str = "production",
    producer: str = SPARK,
    event_id: str = "",
    reason: str | None = None,
    size: int = 2048,
) -> Outcome:
    return Outcome(
        status=status,  # type: ignore[arg-type]
        reason=reason,
        kind="RUN",
        event_id=event_id or f"{run_id[-4:]}-{event_type.lower()}",
        namespace=namespace,
        job=job,
        run_id=run_id,
        event_type=event_type,
        event_time="2026-11-21T10:00:00.000000Z",
        integration="SPARK" if producer == SPARK else "DBT",
        producer=producer,
        bytes=size,
        stored_bytes=size // 2,
        message="namespace 'dbt' is not writable with this token" if reason == "forbidden" else None,
    )


def _merge(status: str, run_id: str, job: str = "etl_orders", **extra: object) -> MergeOutcome:
    return MergeOutcome(status=status, kind="RUN", namespace="production", job=job, run_id=run_id, **extra)  # type: ignore[arg-type]


@pytest.fixture
def logs() -> dict[str, list[str]]:
    """A day in the life: run A completes normally, run B ends without a START, dbt writes into `dbt`."""
    ingest = [
        ingest_line(_event("accepted", RUN_A, "START"), at(0), "req-a1"),
        ingest_line(_event("duplicate", RUN_A, "START"), at(1), "req-a1-retry"),
        ingest_line(_event("accepted", RUN_A, "COMPLETE", size=4096), at(60), "req-a2"),
        ingest_line(_event("accepted", RUN_B, "COMPLETE", job="etl_customers"), at(70), "req-b1"),
        ingest_line(
            _event("rejected", RUN_B, "RUNNING", namespace="dbt", producer=DBT, reason="forbidden"), at(80), "req-d1"
        ),
        ingest_line(
            _event("rejected", RUN_B, "COMPLETE", namespace="dbt", producer=DBT, reason="forbidden"), at(81), "req-d2"
        ),
    ]
    invalid = _event("rejected", RUN_B, "START", reason="invalid_event", producer=DBT)
    invalid.errors = [FieldError("run.runId", "Field required")]
    ingest.append(ingest_line(invalid, at(82), "req-d3"))
    merge = [
        merge_line(_merge("merged", RUN_A, state="COMPLETE", events=2, lag_seconds=0.8), at(61)),
        merge_line(_merge("awaiting_start", RUN_B, job="etl_customers", events=1), at(71)),
        merge_line(_merge("awaiting_start", "run-c", job="late_start"), at(90)),
        merge_line(_merge("merged", "run-c", job="late_start", state="COMPLETE"), at(95)),
        merge_line(
            _merge(
                "failed",
                "run-d",
                job="broken",
                reason="corrupt_event",
                retriable=False,
                message="body of event 1 does not decode",
            ),
            at(100),
        ),
        "2026-11-21T10:02:00.000Z 5b7e0c3f Task timed out after 120.00 seconds",
        # The same in Lambda's JSON log format (the functions' LoggingConfig): a platform record
        json.dumps(
            {
                "time": "2026-11-21T10:03:00.000Z",
                "type": "platform.runtimeDone",
                "record": {"requestId": "5b7e0c3f", "status": "timeout", "metrics": {"durationMs": 10000.0}},
            }
        ),
    ]
    access = [
        access_line(at(0), "req-a1", 200, integrationStatus="200", **{"authorizer.tokenId": "3f9c0a1b2c3d4e5f"}),
        access_line(at(60), "req-a2", 200, integrationStatus="200", **{"authorizer.tokenId": "3f9c0a1b2c3d4e5f"}),
        access_line(at(80), "req-d1", 403, integrationStatus="200", **{"authorizer.tokenId": "aaaa0000bbbb1111"}),
        access_line(at(85), "req-x1", 401),
        access_line(at(86), "req-x2", 403),
        access_line(at(87), "req-x3", 403),
    ]
    authorizer = [
        authorizer_line(at(0), "req-a1", "ok", "3f9c0a1b2c3d4e5f"),
        authorizer_line(at(86), "req-x2", "revoked", "cccc2222dddd3333"),
        authorizer_line(at(87), "req-x3", "wrong_secret", "cccc2222dddd3333"),
    ]
    return {
        "IngestLogGroup": ingest,
        "MergeLogGroup": merge,
        "HttpApiAccessLogGroup": access,
        "AuthorizerLogGroup": authorizer,
    }


def test_the_template_saves_the_six_queries_operators_ask_for() -> None:
    # Given the template / When its saved queries are read
    queries = saved_queries()
    # Then each question of the issue has its query, over the log groups that answer it
    assert set(queries) == {
        "event-fate",
        "rejections",
        "denials-by-token",
        "runs-awaiting-start",
        "failed-merges",
        "top-producers",
    }
    assert set(queries["event-fate"].log_groups) == {"HttpApiAccessLogGroup", "IngestLogGroup", "MergeLogGroup"}
    assert queries["event-fate"].parameters == ("id",)


@pytest.mark.parametrize("name", sorted(saved_queries()))
def test_every_saved_query_parses_and_runs_over_real_log_lines(name: str, logs: dict[str, list[str]]) -> None:
    # Given a saved query and a day of logs
    query = saved_query(name)
    # When it runs (parameters filled in)
    rows = query.run(logs, **dict.fromkeys(query.parameters, RUN_A))
    # Then it answers something
    assert rows, name


def test_the_fate_of_a_run_names_its_events_and_its_merge_in_time_order(logs: dict[str, list[str]]) -> None:
    # Given run A's two events, a retry and its merge / When its fate is asked by runId
    rows = saved_query("event-fate").run(logs, id=RUN_A)
    # Then the ingest lines and the merge line come in order, and nothing of other runs
    assert [(r["message"], r.get("eventType")) for r in rows] == [
        ("event accepted", "START"),
        ("event duplicate", "START"),
        ("event accepted", "COMPLETE"),
        ("merge merged", None),
    ]
    assert rows[-1]["state"] == "COMPLETE"
    assert {r["correlation_id"] for r in rows[:3]} == {"req-a1", "req-a1-retry", "req-a2"}


def test_the_fate_of_a_request_joins_the_access_log_and_the_ingest_line(logs: dict[str, list[str]]) -> None:
    # Given a request id from a run's fate / When the fate is asked by that id
    rows = saved_query("event-fate").run(logs, id="req-d1")
    # Then the access line (403) and ingest's reason are shown together
    assert [(r["@log"], r.get("status"), r.get("reason")) for r in rows] == [
        ("HttpApiAccessLogGroup", "403", None),
        ("IngestLogGroup", None, "forbidden"),
    ]


def test_the_fate_of_an_event_is_found_by_its_event_id(logs: dict[str, list[str]]) -> None:
    # Given an event id that a producer got back / When its fate is asked
    rows = saved_query("event-fate").run(logs, id="0001-complete")
    # Then exactly its ingest line answers
    assert [(r["outcome"], r["runId"]) for r in rows] == [("accepted", RUN_A)]


def test_rejections_are_counted_by_reason_namespace_and_producer(logs: dict[str, list[str]]) -> None:
    # Given two forbidden dbt events and one invalid event / When rejections are asked
    rows = saved_query("rejections").run(logs)
    # Then the namespace mistake comes first with its message, accepted events count nothing
    assert rows == [
        {
            "reason": "forbidden",
            "namespace": "dbt",
            "producer": DBT,
            "events": 2,
            "example": "namespace 'dbt' is not writable with this token",
        },
        {"reason": "invalid_event", "namespace": "production", "producer": DBT, "events": 1},
    ]


def test_denials_are_counted_by_token_and_unauthenticated_requests_by_status(logs: dict[str, list[str]]) -> None:
    # Given a revoked and a wrong-secret attempt by one token, a request without a token, and ingest's own 403
    rows = saved_query("denials-by-token").run(logs)
    by_key = {(r.get("tokenId"), r.get("reason"), r.get("status")): r["denials"] for r in rows}
    # Then the authorizer's denials name the token and reason, the access log counts what never reached ingest,
    # and the 403 that ingest answered (integrationStatus 200) is a rejection, not a denial
    assert by_key == {
        ("cccc2222dddd3333", "revoked", None): 1,
        ("cccc2222dddd3333", "wrong_secret", None): 1,
        ("-", None, "401"): 1,
        ("-", None, "403"): 2,
    }


def test_runs_awaiting_start_leave_out_runs_whose_start_came_later(logs: dict[str, list[str]]) -> None:
    # Given run B awaiting its START, and run C that awaited and was then merged / When the query runs
    rows = saved_query("runs-awaiting-start").run(logs)
    # Then only run B is listed
    assert [(r["job"], r["runId"], r["lastOutcome"]) for r in rows] == [("etl_customers", RUN_B, "awaiting_start")]
    assert rows[0]["lastSeen"] == "2026-11-21 10:01:11.000"


def test_failed_merges_list_the_failure_and_the_timeout_of_the_function(logs: dict[str, list[str]]) -> None:
    # Given a merge that failed on a corrupt event and two timed-out invocations / When the query runs
    rows = saved_query("failed-merges").run(logs)
    # Then all three are listed, newest first (the JSON timeout record, the text one), with the run and reason of
    # the failure
    assert len(rows) == 3
    assert json.loads(rows[0]["@message"])["record"]["status"] == "timeout"
    assert rows[1]["@message"].endswith("Task timed out after 120.00 seconds")
    assert (rows[2]["runId"], rows[2]["reason"], rows[2]["retriable"], rows[2]["detail"]) == (
        "run-d",
        "corrupt_event",
        False,
        "body of event 1 does not decode",
    )


def test_top_producers_rank_by_events_with_bytes_and_jobs(logs: dict[str, list[str]]) -> None:
    # Given four Spark events (two jobs) and three dbt events / When the query runs
    rows = saved_query("top-producers").run(logs)
    # Then Spark comes first, with its bytes summed and its jobs counted once each
    assert rows == [
        {"producer": SPARK, "events": 4, "totalBytes": 2048 * 3 + 4096, "jobs": 2},
        {"producer": DBT, "events": 3, "totalBytes": 2048 * 3, "jobs": 1},
    ]


def test_a_comparison_with_a_missing_field_is_false_either_way() -> None:
    # Given one record with a reason and one without
    records = [to_record('{"reason": "x"}'), to_record('{"other": 1}')]
    # When they are filtered with = and != / Then the record without the field matches neither
    assert len(run('filter reason = "x"', records)) == 1
    assert run('filter reason != "x"', records) == []
    assert len(run("filter not ispresent(reason)", records)) == 1


def test_numeric_strings_compare_as_numbers_and_like_takes_a_regex() -> None:
    # Given access-log style string values
    records = [to_record({"status": "503", "route": "POST /api/v1/lineage"}), to_record({"status": "99"})]
    # When compared to a number and matched with like / Then numbers win over text order
    assert [r["status"] for r in run("fields status | filter status >= 500", records)] == ["503"]
    assert len(run("filter route like /lineage$/", records)) == 1
    assert len(run("filter route not like /lineage$/ and ispresent(route)", records)) == 0


def test_nested_json_is_flattened_with_dots_as_in_logs_insights() -> None:
    # Given an ingest line with field errors
    record = to_record({"errors": [{"path": "run.runId", "message": "Field required"}]})
    # When it is filtered on the flattened name / Then it matches
    assert run('filter errors.0.path = "run.runId" | fields errors.0.message', [record]) == [
        {"errors.0.message": "Field required"}
    ]


def test_a_placeholder_value_is_escaped_and_a_missing_one_is_an_error() -> None:
    # Given the parameterised fate query
    query = saved_query("event-fate")
    # When a value holds a quote / Then it stays inside the string literal
    assert 'eventId = "a\\"b"' in query.render(id='a"b')
    # When the value is missing / Then the error names the parameter
    with pytest.raises(QueryError, match="id"):
        query.render()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("filter a = ", "expected more at the end"),
        ("display a", "command 'display' is not supported"),
        ("stats pct(a, 50)", "aggregate 'pct'"),
        ("filter a = 1 b", "unexpected 'b' at 13"),
        ("fields a | | limit 1", "empty command"),
    ],
)
def test_a_query_outside_the_subset_fails_with_where_and_why(query: str, message: str) -> None:
    # Given a query the engine does not support / When it runs / Then the error says where and why
    with pytest.raises(QueryError, match=message):
        run(query, [])
