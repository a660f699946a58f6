"""Namespaces stay closed (issue 13): a token writes only into its connections, on the merge's side too.

The ingest and merge functions run as deployed (handlers loaded from template.yaml, on moto): requests carry the
authorizer context of a token (events/ingest-start.json), the merge gets the Events table's real stream records.
The rule and its reasons: docs/auth.md, "Namespaces stay closed".
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import boto3
import pytest
from lineage_intake import keys
from lineage_intake.principal import Principal
from lineage_intake.store.dynamo import from_dynamodb, paginate
from lineage_intake_tools.local.template import Stack

from tests.helpers.api_request import api_get
from tests.helpers.auth import ingest_request
from tests.helpers.cli_run import CliRun, cli_runner
from tests.helpers.pipeline import Pipeline
from tests.helpers.runs import at

PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.0.0/client/python"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
PARENT_FACET_URL = "https://openlineage.io/spec/facets/1-0-0/ParentRunFacet.json#/$defs/ParentRunFacet"
#: The parent's connection, and the child's: a token scoped to ``team-x`` only may not write ``default``.
PARENT_NS, CHILD_NS = "default", "team-x"
PARENT_JOB, CHILD_JOB = "nightly_dag", "load_orders"
PARENT_RUN = "0193a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a6b"
CHILD_RUN = "0193a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a6c"


@pytest.fixture
def run_cli(stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> CliRun:
    return cli_runner(stack, monkeypatch, capsys)


def run_events(
    namespace: str,
    job: str,
    run_id: str,
    *,
    parent: tuple[str, str, str] | None = None,
    outputs: tuple[tuple[str, str], ...] = (),
    start: float = 0,
) -> list[dict[str, Any]]:
    """The START and COMPLETE of one run, with a ``parent`` facet (namespace, job, runId) when given."""
    facets: dict[str, Any] = {}
    if parent is not None:
        facets["parent"] = {
            "_producer": PRODUCER,
            "_schemaURL": PARENT_FACET_URL,
            "job": {"namespace": parent[0], "name": parent[1]},
            "run": {"runId": parent[2]},
        }
    events = []
    for event_type, seconds in (("START", start), ("COMPLETE", start + 10)):
        events.append(
            {
                "eventType": event_type,
                "eventTime": at(seconds),
                "producer": PRODUCER,
                "schemaURL": SCHEMA_URL,
                "job": {"namespace": namespace, "name": job, "facets": {}},
                "run": {"runId": run_id, "facets": facets},
                "inputs": [],
                "outputs": [{"namespace": ns, "name": name, "facets": {}} for ns, name in outputs],
            }
        )
    return events


def dataset_event(namespace: str, name: str, description: str, seconds: float) -> dict[str, Any]:
    return {
        "eventTime": at(seconds),
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": {
            "namespace": namespace,
            "name": name,
            "facets": {
                "documentation": {
                    "_producer": PRODUCER,
                    "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/DocumentationDatasetFacet.json",
                    "description": description,
                }
            },
        },
    }


class Sender:
    """Posts events through the ingest function with a token's authorizer context, then hands the new stream
    records to the merge function as one batch."""

    def __init__(self, ingest: ModuleType, merge_app: ModuleType, pipeline: Pipeline, context: Any) -> None:
        self.ingest, self.merge_app, self.pipeline, self.context = ingest, merge_app, pipeline, context

    def send(self, token: Principal, *events: dict[str, Any]) -> None:
        for event in events:
            answer = self.ingest.handler(ingest_request(event, token.to_context()), self.context)
            assert answer["statusCode"] == 200, answer["body"]
        records = self.pipeline.filtered(self.pipeline.new_records())
        assert self.merge_app.handler({"Records": records}, self.context) == {"batchItemFailures": []}


@pytest.fixture
def sender(ingest: ModuleType, merge_app: ModuleType, pipeline: Pipeline, lambda_context: Any) -> Sender:
    return Sender(ingest, merge_app, pipeline, lambda_context)


def token(token_id: str, *connections: str) -> Principal:
    return Principal(token_id, frozenset(connections))


NARROW = token("tok_team_x", CHILD_NS)
WIDE = token("tok_platform", CHILD_NS, PARENT_NS)
PARENT_OWNER = token("tok_default", PARENT_NS)


def of_namespace(snapshot: dict[tuple[str, str], dict[str, Any]], namespace: str) -> dict[Any, dict[str, Any]]:
    """The Lineage items that belong to a job namespace: its runs, jobs, namespace item and child links."""
    parent_runs = {keys.run_key(PARENT_RUN)}
    return {
        k: v
        for k, v in snapshot.items()
        if (v.get("type") in ("run", "job") and v.get("namespace") == namespace)
        or (v.get("type") == "namespace" and v.get("name") == namespace)
        or k[0] in parent_runs
    }


def children_ids(pipeline: Pipeline) -> list[tuple[str, str, str | None]]:
    children = pipeline.lineage.run_children(PARENT_NS, PARENT_JOB, PARENT_RUN)
    return [(c["namespace"], c["job"], c.get("state")) for c in children]


# ================================================================================== the event item
def test_the_event_item_records_the_connections_of_the_token_that_sent_it(
    sender: Sender, pipeline: Pipeline, aws: boto3.Session
) -> None:
    # Given a token scoped to two connections
    # When it sends a run of one of them
    sender.send(WIDE, *run_events(CHILD_NS, CHILD_JOB, CHILD_RUN))
    # Then each stored event names the token and both its connections
    items = [from_dynamodb(i) for i in paginate(aws.client("dynamodb"), "scan", TableName=pipeline.events_table)]
    assert [(i["tokenId"], i["connections"]) for i in items] == [("tok_platform", [PARENT_NS, CHILD_NS])] * 2


# ================================================================================== parent facets
def test_a_parent_in_another_connection_is_not_modified_and_still_lists_the_child(
    sender: Sender, pipeline: Pipeline, api: ModuleType, run_cli: CliRun, lambda_context: Any
) -> None:
    # Given a parent run merged in connection "default"
    sender.send(PARENT_OWNER, *run_events(PARENT_NS, PARENT_JOB, PARENT_RUN))
    before = of_namespace(pipeline.snapshot(), PARENT_NS)
    assert before  # the parent's run, job and namespace items
    # When a token scoped to "team-x" only sends a run whose parent facet names that run
    sender.send(NARROW, *run_events(CHILD_NS, CHILD_JOB, CHILD_RUN, parent=(PARENT_NS, PARENT_JOB, PARENT_RUN)))
    # Then nothing of "default" changed: no child link under the parent's run, no rewritten record
    after = pipeline.snapshot()
    assert of_namespace(after, PARENT_NS) == before
    # And the child keeps the link on its own side
    child = pipeline.lineage.get_run(CHILD_NS, CHILD_JOB, CHILD_RUN)
    assert child is not None and child["state"] == "COMPLETE"
    assert child["parent"] == {"namespace": PARENT_NS, "job": PARENT_JOB, "runId": PARENT_RUN}
    # And the parent's readers still find the child: the store, the read API and the CLI's run view
    assert children_ids(pipeline) == [(CHILD_NS, CHILD_JOB, "COMPLETE")]
    status, body = api_get(api, lambda_context, f"/api/v1/jobs/runs/{PARENT_RUN}/children")
    assert status == 200, body
    assert [(r["id"], r["state"]) for r in body["runs"]] == [(CHILD_RUN, "COMPLETED")] and body["totalCount"] == 1
    code, out, err = run_cli("runs", "show", PARENT_NS, PARENT_JOB, PARENT_RUN, "--json")
    assert code == 0, err
    assert [(c["namespace"], c["job"], c["runId"]) for c in json.loads(out)["children"]] == [
        (CHILD_NS, CHILD_JOB, CHILD_RUN)
    ]


def test_a_parent_never_seen_in_another_connection_gets_no_placeholder(sender: Sender, pipeline: Pipeline) -> None:
    # Given an empty Lineage table
    # When a "team-x" token sends a run whose parent is a run of "default" that was never sent
    sender.send(NARROW, *run_events(CHILD_NS, CHILD_JOB, CHILD_RUN, parent=(PARENT_NS, PARENT_JOB, PARENT_RUN)))
    # Then "default" has no record at all: no placeholder run, no placeholder job, no namespace item
    assert of_namespace(pipeline.snapshot(), PARENT_NS) == {}
    assert pipeline.lineage.get_job(PARENT_NS, PARENT_JOB) is None
    # But the child is already found under its parent's runId
    assert children_ids(pipeline) == [(CHILD_NS, CHILD_JOB, "COMPLETE")]
    # When the parent's own token sends the parent run later
    sender.send(PARENT_OWNER, *run_events(PARENT_NS, PARENT_JOB, PARENT_RUN, start=-60))
    # Then it is merged as any run, and lists the child
    parent = pipeline.lineage.get_run(PARENT_NS, PARENT_JOB, PARENT_RUN)
    assert parent is not None and parent["state"] == "COMPLETE" and not parent.get("placeholder")
    assert children_ids(pipeline) == [(CHILD_NS, CHILD_JOB, "COMPLETE")]


def test_a_token_that_may_write_the_parents_connection_links_and_creates_placeholders_as_before(
    sender: Sender, pipeline: Pipeline
) -> None:
    # Given a token scoped to both connections
    # When it sends a child run whose parent was never seen
    sender.send(WIDE, *run_events(CHILD_NS, CHILD_JOB, CHILD_RUN, parent=(PARENT_NS, PARENT_JOB, PARENT_RUN)))
    # Then the parent gets its placeholders and the child link lives under the parent's runId
    parent = pipeline.lineage.get_run(PARENT_NS, PARENT_JOB, PARENT_RUN)
    assert parent is not None and parent["placeholder"] is True
    job = pipeline.lineage.get_job(PARENT_NS, PARENT_JOB)
    assert job is not None and job["placeholder"] is True
    links = [k for k, v in pipeline.snapshot().items() if v.get("type") == "child"]
    assert [pk for pk, _sk in links] == [keys.run_key(PARENT_RUN)]
    child = pipeline.lineage.get_run(CHILD_NS, CHILD_JOB, CHILD_RUN)
    assert child is not None and "gsi4pk" not in child
    assert children_ids(pipeline) == [(CHILD_NS, CHILD_JOB, "COMPLETE")]


def test_one_event_from_a_narrower_token_moves_the_link_to_the_childs_side(sender: Sender, pipeline: Pipeline) -> None:
    # Given a child run sent by a token of both connections: linked under its parent
    start, complete = run_events(CHILD_NS, CHILD_JOB, CHILD_RUN, parent=(PARENT_NS, PARENT_JOB, PARENT_RUN))
    sender.send(WIDE, start, complete)
    assert [v for v in pipeline.snapshot().values() if v.get("type") == "child"]
    # When a "team-x"-only token adds an event to the same run
    late = {**complete, "eventType": "OTHER", "eventTime": at(5)}
    sender.send(NARROW, late)
    # Then the run no longer writes under the parent: its link item is gone, the child is indexed instead
    assert [v for v in pipeline.snapshot().values() if v.get("type") == "child"] == []
    child = pipeline.lineage.get_run(CHILD_NS, CHILD_JOB, CHILD_RUN)
    assert child is not None and child["eventCount"] == 3 and child["gsi4pk"] == "CHILD#" + keys.run_key(PARENT_RUN)
    assert children_ids(pipeline) == [(CHILD_NS, CHILD_JOB, "COMPLETE")]


def test_a_child_stored_before_connections_were_recorded_is_re_merged_into_the_index(
    sender: Sender, pipeline: Pipeline, aws: boto3.Session
) -> None:
    # Given a child linked under its parent, whose events carry no connections (stored before issue 13)
    sender.send(WIDE, *run_events(CHILD_NS, CHILD_JOB, CHILD_RUN, parent=(PARENT_NS, PARENT_JOB, PARENT_RUN)))
    dynamodb = aws.client("dynamodb")
    for item in paginate(dynamodb, "scan", TableName=pipeline.events_table):
        key = {"pk": item["pk"], "sk": item["sk"]}
        dynamodb.update_item(TableName=pipeline.events_table, Key=key, UpdateExpression="REMOVE connections")
    # When an operator merges the run again from the same events (`lineage-intake runs merge`)
    outcome = pipeline.service.merge_run(CHILD_NS, CHILD_JOB, CHILD_RUN)
    # Then the parent's namespace counts as closed (fail closed): the link item is gone, the run item indexed
    assert outcome.status == "merged"
    assert [v for v in pipeline.snapshot().values() if v.get("type") == "child"] == []
    child = pipeline.lineage.get_run(CHILD_NS, CHILD_JOB, CHILD_RUN)
    assert child is not None and child["gsi4pk"] == "CHILD#" + keys.run_key(PARENT_RUN)
    # And the parent still lists the child
    assert children_ids(pipeline) == [(CHILD_NS, CHILD_JOB, "COMPLETE")]


# ================================================================================== datasets
def test_a_runs_datasets_in_any_namespace_are_written_with_the_run_that_reported_them(
    sender: Sender, pipeline: Pipeline
) -> None:
    # Given a "team-x" token
    # When its run writes a table whose dataset namespace is no connection of the token
    sender.send(NARROW, *run_events(CHILD_NS, CHILD_JOB, CHILD_RUN, outputs=(("postgres://db:5432", "public.orders"),)))
    # Then the dataset exists (datasets are shared between producers), partial, with the run as its writer
    lineage = pipeline.lineage.dataset_lineage("postgres://db:5432", "public.orders")
    assert lineage["dataset"] is not None and lineage["dataset"]["partial"] is True
    assert [(e["job"]["namespace"], e["job"]["name"]) for e in lineage["upstream"]] == [(CHILD_NS, CHILD_JOB)]


def test_a_dataset_definition_records_every_token_and_connection_that_sent_it(
    sender: Sender, pipeline: Pipeline, api: ModuleType, run_cli: CliRun, lambda_context: Any
) -> None:
    # Given two tokens of different connections, neither named after the dataset's namespace
    # When both send a DatasetEvent for the same table, the "default" one last
    sender.send(NARROW, dataset_event("postgres://db:5432", "public.orders", "orders, by team x", 0))
    sender.send(PARENT_OWNER, dataset_event("postgres://db:5432", "public.orders", "orders, by platform", 60))
    # Then both are accepted, the latest definition wins, and the record names both senders, latest first
    item = pipeline.lineage.get_dataset("postgres://db:5432", "public.orders")
    assert item is not None and item["partial"] is False
    assert item["definedDescription"] == "orders, by platform"
    senders = [
        {"tokenId": "tok_default", "connections": [PARENT_NS]},
        {"tokenId": "tok_team_x", "connections": [CHILD_NS]},
    ]
    assert item["definedBy"] == senders
    # And the read API and the CLI show them
    status, body = api_get(api, lambda_context, "/api/v1/namespaces/postgres%3A%2F%2Fdb%3A5432/datasets/public.orders")
    assert status == 200, body
    assert body["definedBy"] == senders
    code, out, err = run_cli("datasets", "show", "postgres://db:5432", "public.orders")
    assert code == 0, err
    assert "defined by token tok_default (connections: default)" in out
    assert "defined by token tok_team_x (connections: team-x)" in out


def test_a_dataset_event_from_a_token_without_connections_is_refused(ingest: ModuleType, lambda_context: Any) -> None:
    # Given a read+write token scoped to no connection
    nobody = Principal("tok_nobody", frozenset(), frozenset({"read", "write"}))
    # When it sends a DatasetEvent
    event = dataset_event("postgres://db:5432", "public.orders", "no", 0)
    answer = ingest.handler(ingest_request(event, nobody.to_context()), lambda_context)
    # Then it is refused with 403 and a message saying why
    assert answer["statusCode"] == 403
    assert "not scoped to any connection" in json.loads(answer["body"])["message"]
