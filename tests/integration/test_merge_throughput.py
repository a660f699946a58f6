"""The merge's work per record (issue 13, docs/merge.md "Throughput") on moto: a START that finds no terminal event
costs one Query and no decode, a job's lineage is written in full transactions with one namespace item per namespace,
and the conditions that keep an older run's result under a newer one still hold."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest
from lineage_intake.store.dynamo import TRANSACTION_WRITES
from lineage_intake.store.events import EventsStore
from lineage_intake.store.lineage_items import CHECKPOINT_EVERY

from tests.helpers.pipeline import Pipeline
from tests.helpers.runs import flink_streaming_run, wide_run

NS = "team-x"
JOB = "load_orders"
RUN = "0193a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a01"
OLDER_RUN = "0193a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a02"


class Calls:
    """The DynamoDB requests a client makes (operation and parameters) and the errors it gets back."""

    def __init__(self, client: Any) -> None:
        self.requests: list[tuple[str, Mapping[str, Any]]] = []
        self.errors: list[tuple[str, str]] = []
        client.meta.events.register("before-parameter-build.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    def _before(self, model: Any, params: Mapping[str, Any], **_: Any) -> None:
        self.requests.append((model.name, params))

    def _after(self, model: Any, parsed: Mapping[str, Any], **_: Any) -> None:
        if "Error" in parsed:
            self.errors.append((model.name, str(parsed["Error"].get("Code"))))

    def clear(self) -> None:
        self.requests.clear()
        self.errors.clear()

    def operations(self) -> list[str]:
        return [name for name, _ in self.requests]


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[Mapping[str, Any]]:
    """The event items whose body the merge decoded."""
    items: list[Mapping[str, Any]] = []
    original = EventsStore.load_body

    def load_body(self: EventsStore, item: Mapping[str, Any]) -> bytes:
        items.append(item)
        return original(self, item)

    monkeypatch.setattr(EventsStore, "load_body", load_body)
    return items


# ================================================================================== START without terminal event
def test_a_start_of_a_batch_run_costs_one_bodiless_query_and_writes_nothing(
    pipeline: Pipeline, decoded: list[Mapping[str, Any]]
) -> None:
    # Given the START of a batch run stored, and its stream record
    start, complete = wide_run(NS, JOB, RUN, outputs=2)
    pipeline.store(start)
    records = pipeline.filtered(pipeline.new_records())
    calls = Calls(pipeline.dynamodb)
    # When the merge handles the record
    (outcome,) = pipeline.deliver(records)
    # Then it made one Query of the run's first events (a page of CHECKPOINT_EVERY), decoded no body, wrote nothing
    assert outcome.status == "pending" and outcome.reason == "no terminal event yet" and outcome.state == "RUNNING"
    assert calls.operations() == ["Query"] and calls.requests[0][1]["Limit"] == CHECKPOINT_EVERY
    assert decoded == [] and outcome.written == 0
    assert pipeline.snapshot() == {}
    # When its COMPLETE comes, the run is merged from both events
    (done,) = pipeline.send(complete)
    assert done.status == "merged" and done.state == "COMPLETE" and done.events == 2


def test_a_start_and_its_complete_in_one_batch_merge_once_reading_the_events_once(pipeline: Pipeline) -> None:
    # Given a run's START and COMPLETE stored, and their two stream records in one batch
    for event in wide_run(NS, JOB, RUN, outputs=2):
        pipeline.store(event)
    records = pipeline.filtered(pipeline.new_records())
    calls = Calls(pipeline.dynamodb)
    # When the merge handles the batch
    outcomes = pipeline.deliver(records)
    # Then the START's record merges the run from the events its first Query read, and the COMPLETE's record is
    # coalesced: one Query of the Events table in all, before the run's state (the first read of the lineage)
    assert [o.status for o in outcomes] == ["merged"] and outcomes[0].events == 2
    queries = [p for name, p in calls.requests if name == "Query"]
    assert [p["TableName"] for p in queries[:2]] == [pipeline.events_table, pipeline.lineage_table]
    assert sum(p["TableName"] == pipeline.events_table for p in queries) == 1


def test_a_start_that_comes_after_its_complete_merges_the_run(pipeline: Pipeline) -> None:
    # Given a run whose COMPLETE came first and waits for its START
    start, complete = wide_run(NS, JOB, RUN, outputs=2)
    (waiting,) = pipeline.send(complete)
    assert waiting.status == "awaiting_start"
    # When its START comes
    (outcome,) = pipeline.send(start)
    # Then the START's record merges the run: a terminal event is stored
    assert outcome.status == "merged" and outcome.state == "COMPLETE" and outcome.events == 2
    run = pipeline.lineage.get_run(NS, JOB, RUN)
    assert run is not None and run["state"] == "COMPLETE"


def test_a_start_of_a_streaming_run_is_merged_as_streaming(pipeline: Pipeline) -> None:
    # Given the START of a Flink run (jobType STREAMING)
    start = flink_streaming_run(RUN)[0]
    # When it is merged
    (outcome,) = pipeline.send(start)
    # Then the run is streaming, not pending: its lineage is written from its first event
    assert outcome.status == "streaming" and outcome.state == "RUNNING" and outcome.written >= 1


# ================================================================================== batched writes
def test_a_run_of_many_datasets_writes_its_edges_in_full_transactions_and_one_namespace_item(
    pipeline: Pipeline,
) -> None:
    # Given a run writing 30 datasets of one namespace, each with 4 columns fed by another dataset's (so 30 inputs)
    start, complete = wide_run(NS, JOB, RUN, outputs=30, fields=4, start=100)
    pipeline.send(start)
    calls = Calls(pipeline.dynamodb)
    # When its COMPLETE is merged
    (outcome,) = pipeline.send(complete)
    # Then every edge and column edge is written, in transactions of up to TRANSACTION_WRITES writes plus the guard
    assert outcome.status == "merged" and outcome.column_edges == 120 and outcome.outputs == 30
    transactions = [p["TransactItems"] for name, p in calls.requests if name == "TransactWriteItems"]
    writes = sum(len(t) - 1 for t in transactions)
    assert writes == 30 + 30 + 120 and len(transactions) == math.ceil(writes / TRANSACTION_WRITES)
    assert all(len(t) <= 100 and "ConditionCheck" in t[0] for t in transactions[:-1])
    # And the last one's guard is the job's seal: its lineageDigest, under the same condition
    seal = transactions[-1][0]["Update"]
    assert seal["ConditionExpression"] == "#g = :g" and "lineageDigest" in seal["ExpressionAttributeNames"].values()
    assert len(pipeline.lineage.job_edges(NS, JOB)["outputs"]) == 30
    assert len(pipeline.lineage.column_lineage(NS, "out29", "c3")) == 1
    # And the namespace item was created once, not once per dataset: no write was refused
    assert calls.errors == []


def test_an_older_run_merged_later_leaves_the_newer_runs_lineage_and_schemas_on_top(pipeline: Pipeline) -> None:
    # Given a run of 30 datasets with 4 columns each, merged
    pipeline.send(*wide_run(NS, JOB, RUN, outputs=30, fields=4, start=100))
    # When an older run of the same job, whose datasets had 6 columns, is merged after it
    (outcome,) = pipeline.send(*wide_run(NS, JOB, OLDER_RUN, outputs=30, fields=6, start=0))
    # Then the newer run's lineage and schemas stay current; the older schema is kept as a version only
    assert outcome.status == "merged" and outcome.latest_run is False
    job = pipeline.lineage.get_job(NS, JOB)
    assert job is not None and RUN in str(job["lineageVersion"])
    for i in (0, 29):
        dataset = pipeline.lineage.get_dataset(NS, f"out{i}")
        assert dataset is not None and [f["name"] for f in dataset["fields"]] == ["c0", "c1", "c2", "c3"]
        assert len(pipeline.lineage.dataset_versions(NS, f"out{i}")) == 2
    assert pipeline.lineage.column_lineage(NS, "out0", "c5") == []


# ================================================================================== log line
@pytest.mark.parametrize(("also", "child_side"), [((), True), (("default",), False)])
def test_the_merge_log_line_says_when_the_parent_link_is_kept_on_the_childs_side(
    pipeline: Pipeline, also: tuple[str, ...], child_side: bool
) -> None:
    # Given a run of team-x whose parent is a run of "default", sent by a token of team-x (or of both)
    events = wide_run(NS, JOB, RUN, outputs=1, parent=("default", "nightly_dag", OLDER_RUN))
    # When it is merged
    outcomes = [pipeline.send(event, also=also) for event in events]
    fields = outcomes[-1][0].log_fields()
    # Then its log line says so exactly when the parent's namespace is closed to the run's tokens
    assert fields["outcome"] == "merged"
    assert fields.get("parentLinkChildSide") is (True if child_side else None)
