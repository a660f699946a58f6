"""Namespaces stay closed on the local stack (issue 13): a connection's token cannot write into another through
a parent facet, and DatasetEvents say who sent them. Tokens come from the CLI, events go over HTTP, the parent's
side is read with the read API and the CLI (docs/auth.md, "Namespaces stay closed")."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
import requests
from lineage_intake.store.lineage import LineageStore

from tests.helpers.local_stack import RunningStack
from tests.helpers.stack_client import MERGE_TIMEOUT, cli_json, fresh_run, post, wait_merged

PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.0.0/client/python"


@pytest.fixture(scope="module")
def other(local_stack: RunningStack) -> tuple[str, str]:
    """A second connection and a write token scoped to it alone: (connection, token)."""
    name = f"team-{uuid.uuid4().hex[:8]}"
    cli_json(local_stack, "connections", "create", name)
    return name, cli_json(local_stack, "tokens", "create", "--connection", name)["token"]


def store(stack: RunningStack) -> LineageStore:
    return LineageStore(stack.client("dynamodb"), stack.env["LINEAGE_LINEAGE_TABLE"])


def child_of(stack: RunningStack, namespace: str, parent: tuple[str, str, str]) -> tuple[dict[str, Any], ...]:
    """A fresh run moved to ``namespace`` whose parent facet names ``parent`` (namespace, job, runId)."""
    pair = fresh_run(stack)
    for event in pair:
        event["job"]["namespace"] = namespace
        event["run"].setdefault("facets", {})["parent"] = {
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/ParentRunFacet.json#/$defs/ParentRunFacet",
            "job": {"namespace": parent[0], "name": parent[1]},
            "run": {"runId": parent[2]},
        }
    return pair


def send(stack: RunningStack, token: str, *events: dict[str, Any]) -> None:
    for event in events:
        answer = post(stack, json.dumps(event), token)
        assert answer.status_code == 200, answer.text


def read(stack: RunningStack, path: str) -> requests.Response:
    return requests.get(stack.url + path, headers={"Authorization": f"Bearer {stack.read_token}"}, timeout=30)


def test_a_child_in_another_connection_leaves_the_parent_alone_and_is_listed_by_it(
    local_stack: RunningStack, other: tuple[str, str]
) -> None:
    connection, token = other
    # Given a parent run merged in the stack's connection
    start, complete = fresh_run(local_stack)
    parent = (start["job"]["namespace"], start["job"]["name"], start["run"]["runId"])
    send(local_stack, local_stack.api_key, start, complete)
    wait_merged(local_stack, *parent)
    before = store(local_stack).runs_by_id(parent[2])
    # When a token of the other connection sends a run whose parent facet names it
    child = child_of(local_stack, connection, parent)
    send(local_stack, token, *child)
    wait_merged(local_stack, connection, child[0]["job"]["name"], child[0]["run"]["runId"])
    # Then the parent's runId partition holds exactly what it held (no child link was written there)
    links = local_stack.client("dynamodb").query(
        TableName=local_stack.env["LINEAGE_LINEAGE_TABLE"],
        KeyConditionExpression="pk = :pk AND begins_with(sk, :c)",
        ExpressionAttributeValues={":pk": {"S": before[0]["pk"]}, ":c": {"S": "CHILD#"}},
    )["Items"]
    assert links == [] and store(local_stack).runs_by_id(parent[2]) == before
    # And the read API lists the child under its parent (gsi4 is eventually consistent on AWS: poll briefly)
    deadline = time.monotonic() + MERGE_TIMEOUT
    while True:
        answer = read(local_stack, f"/api/v1/jobs/runs/{parent[2]}/children")
        assert answer.status_code == 200, answer.text
        runs = answer.json()["runs"]
        if runs or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [(r["id"], r["state"]) for r in runs] == [(child[0]["run"]["runId"], "COMPLETED")]
    # And so does the CLI's run view of the parent
    shown = cli_json(local_stack, "runs", "show", *parent)
    assert [(c["namespace"], c["runId"]) for c in shown["children"]] == [(connection, child[0]["run"]["runId"])]


def test_a_parent_never_seen_in_another_connection_gets_no_placeholder(
    local_stack: RunningStack, other: tuple[str, str]
) -> None:
    connection, token = other
    # Given a parent run of the stack's connection that was never sent
    parent = (local_stack.namespace, f"never-sent-{uuid.uuid4().hex[:8]}", str(uuid.uuid4()))
    # When the other connection's token sends a child of it
    child = child_of(local_stack, connection, parent)
    send(local_stack, token, *child)
    wait_merged(local_stack, connection, child[0]["job"]["name"], child[0]["run"]["runId"])
    # Then neither a placeholder run nor a placeholder job appeared in the stack's connection
    assert store(local_stack).runs_by_id(parent[2]) == []
    assert store(local_stack).get_job(parent[0], parent[1]) is None
    assert read(local_stack, f"/api/v1/namespaces/{parent[0]}/jobs/{parent[1]}").status_code == 404
    # But the child is found under the parent's runId
    children = store(local_stack).run_children(*parent)
    assert [c["runId"] for c in children] == [child[0]["run"]["runId"]]


def test_a_dataset_event_of_another_connection_is_accepted_and_names_its_token(
    local_stack: RunningStack, other: tuple[str, str]
) -> None:
    connection, token = other
    name = f"public.defined_{uuid.uuid4().hex[:8]}"
    # Given a DatasetEvent for a table whose namespace is a data source, not a connection
    event = {
        "eventTime": "2026-11-21T10:00:00.000Z",
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": {"namespace": "postgres://db:5432", "name": name, "facets": {}},
    }
    # When the other connection's token sends it
    send(local_stack, token, event)
    # Then the dataset is defined, and the read API and the CLI name the token and its connection
    deadline = time.monotonic() + MERGE_TIMEOUT
    while (item := store(local_stack).get_dataset("postgres://db:5432", name)) is None or "definedBy" not in item:
        assert time.monotonic() < deadline, "the DatasetEvent was not merged"
        time.sleep(0.1)
    (sender,) = item["definedBy"]
    assert sender["connections"] == [connection] and token.startswith(f"li_{sender['tokenId']}_")
    answer = read(local_stack, f"/api/v1/namespaces/postgres%3A%2F%2Fdb%3A5432/datasets/{name}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["definedBy"] == [sender]
    shown = cli_json(local_stack, "datasets", "show", "postgres://db:5432", name)
    assert shown["definedBy"] == [sender] and shown["partial"] is False
