"""The read API on the local stack, read by the real ``marquez-python`` 0.50.0 client with the stack's read token.

The Marquez food_delivery seed is sent once (``tests.helpers.ui_seed``: jobs moved into the stack's connection,
times moved to now so the events listing's default window holds them; here a column-lineage facet is added to
one output); each client call's answer is checked for content and validated against Marquez's response
schema (``tests/fixtures/marquez/openapi.yml``). ``marquez-python`` keeps its token in a process-wide dict:
the client is created right before each call.
"""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

import pytest
import requests
from marquez_client import MarquezClient

from tests.helpers.local_stack import AUTH_CACHE_TTL, RunningStack
from tests.helpers.marquez_schema import assert_valid_response
from tests.helpers.ui_seed import food_delivery, send_merged

DATASETS = "food_delivery"


#: The client's timeout. marquez-python's default is 10 s; an events listing of 1,000 walks 168 hourly gsi3
#: Queries, and moto answers each index Query by scanning the table, which the session's other tests filled:
#: on a shared CPU that came to ~10 s (a timeout in `make test`). On DynamoDB such a Query costs milliseconds.
TIMEOUT_MS = 60_000


def marquez(stack: RunningStack, token: str | None = None) -> MarquezClient:
    return MarquezClient(url=stack.url, api_key=token or stack.read_token, timeout_ms=TIMEOUT_MS)


def http_get(stack: RunningStack, path: str, token: str | None = None, **params: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token or stack.read_token}"}
    return requests.get(stack.url + path, params=params, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def seed(local_stack: RunningStack) -> dict[str, Any]:
    """The seed, sent once with fresh runIds, waited for until every run is merged."""
    suffix = uuid.uuid4().hex[:6]
    events = food_delivery(local_stack, suffix)
    run_ids = {e["job"]["name"]: e["run"]["runId"] for e in events}
    for event in events:
        if event["eventType"] == "START" and event["job"]["name"].startswith("etl_orders_7_days"):
            output = event["outputs"][0]
            output.setdefault("facets", {})["columnLineage"] = {
                "_producer": "https://example.com/e2e",
                "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json",
                "fields": {
                    "order_id": {"inputFields": [{"namespace": DATASETS, "name": "public.orders", "field": "id"}]}
                },
            }
    send_merged(local_stack, events)
    return {"suffix": suffix, "events": events, "runs": run_ids}


def job(seed: dict[str, Any], name: str) -> str:
    return f"{name}_{seed['suffix']}"


# ---------------------------------------------------------------------------------------------- marquez-python
def test_namespaces_are_listed_and_read(local_stack: RunningStack, seed: dict[str, Any]) -> None:
    listed = marquez(local_stack).list_namespaces()
    assert {local_stack.namespace, DATASETS} <= {n["name"] for n in listed["namespaces"]}
    assert_valid_response(listed, "/namespaces")
    one = marquez(local_stack).get_namespace(local_stack.namespace)
    assert one["name"] == local_stack.namespace
    assert_valid_response(one, "/namespaces/{namespace}")


def test_jobs_their_runs_and_a_run_are_read(local_stack: RunningStack, seed: dict[str, Any]) -> None:
    name = job(seed, "etl_orders_7_days")
    run_id = seed["runs"][name]
    jobs = marquez(local_stack).list_jobs(local_stack.namespace, limit=1000)
    assert {job(seed, n) for n in ("etl_menus", "email_discounts")} <= {j["name"] for j in jobs["jobs"]}
    assert_valid_response(jobs, "/namespaces/{namespace}/jobs")
    one = marquez(local_stack).get_job(local_stack.namespace, name)
    assert [o["name"] for o in one["outputs"]] == ["public.orders_7_days"] and len(one["inputs"]) == 4
    assert one["latestRun"]["id"] == run_id
    assert_valid_response(one, "/namespaces/{namespace}/jobs/{job}")
    runs = marquez(local_stack).list_job_runs(local_stack.namespace, name)
    assert [r["id"] for r in runs["runs"]] == [run_id] and runs["totalCount"] == 1
    assert_valid_response(runs, "/namespaces/{namespace}/jobs/{job}/runs")
    run = marquez(local_stack).get_job_run(run_id)
    assert run["state"] == "COMPLETED" and run["durationMs"] >= 0
    assert_valid_response(run, "/jobs/runs/{id}")


def test_datasets_are_listed_and_read(local_stack: RunningStack, seed: dict[str, Any]) -> None:
    listed = marquez(local_stack).list_datasets(DATASETS, limit=1000)
    assert {"public.orders_7_days", "public.discounts"} <= {d["name"] for d in listed["datasets"]}
    assert_valid_response(listed, "/namespaces/{namespace}/datasets")
    one = marquez(local_stack).get_dataset(DATASETS, "public.delivery_7_days")
    assert one["id"] == {"namespace": DATASETS, "name": "public.delivery_7_days"} and one["partial"] is True
    assert_valid_response(one, "/namespaces/{namespace}/datasets/{dataset}")


def test_events_are_listed_newest_first(local_stack: RunningStack, seed: dict[str, Any]) -> None:
    listed = marquez(local_stack).list_events(limit=1000)
    ours = [e for e in listed["events"] if e["job"]["name"].endswith(seed["suffix"])]
    assert len(ours) == len(seed["events"])
    times = [e["eventTime"] for e in listed["events"]]
    assert times == sorted(times, reverse=True)
    assert_valid_response(listed, "/events/lineage")
    by_namespace = marquez(local_stack).list_events(namespace=local_stack.namespace, limit=1000)
    assert {e["job"]["namespace"] for e in by_namespace["events"]} == {local_stack.namespace}


def test_column_lineage_is_read_by_dataset_and_by_field(local_stack: RunningStack, seed: dict[str, Any]) -> None:
    by_field = marquez(local_stack).get_column_lineage_by_dataset_field(DATASETS, "public.orders_7_days", "order_id")
    ids = {n["id"] for n in by_field["graph"]}
    assert ids == {
        f"datasetField:{DATASETS}:public.orders_7_days:order_id",
        f"datasetField:{DATASETS}:public.orders:id",
    }
    out = next(n for n in by_field["graph"] if n["id"].endswith(":order_id"))
    assert out["inEdges"] == [{"origin": f"datasetField:{DATASETS}:public.orders:id", "destination": out["id"]}]
    assert_valid_response(by_field, "/column-lineage")
    downstream = marquez(local_stack).get_column_lineage_by_dataset(
        DATASETS, "public.orders", depth=5, with_downstream=True
    )
    assert f"datasetField:{DATASETS}:public.orders_7_days:order_id" in {n["id"] for n in downstream["graph"]}


# ---------------------------------------------------------------------------------------------- scopes
def test_a_write_only_token_gets_403_on_get(local_stack: RunningStack, seed: dict[str, Any]) -> None:
    answer = http_get(local_stack, "/api/v1/namespaces", token=local_stack.api_key)
    assert answer.status_code == 403 and "lacks the 'read' scope" in answer.json()["message"]


def admin(stack: RunningStack) -> Any:
    from lineage_intake.service.admin import Admin
    from lineage_intake.store.auth import ConnectionStore, TokenStore

    ddb = stack.client("dynamodb")
    return Admin(
        ConnectionStore(ddb, stack.env["LINEAGE_CONNECTIONS_TABLE"]), TokenStore(ddb, stack.env["LINEAGE_TOKENS_TABLE"])
    )


def test_a_read_only_token_gets_403_on_post(local_stack: RunningStack, seed: dict[str, Any]) -> None:
    # Given a read-only token (no connection needed)
    reader = admin(local_stack).create_token([], name="e2e read-only", scopes=["read"]).token
    event = copy.deepcopy(seed["events"][0])
    event["run"]["runId"] = str(uuid.uuid4())
    # When it posts an event; Then ingest refuses it, naming the scope, and it can still read
    answer = requests.post(
        local_stack.url + "/api/v1/lineage", json=event, headers={"Authorization": f"Bearer {reader}"}, timeout=30
    )
    assert answer.status_code == 403 and "lacks the 'write' scope" in answer.json()["message"]
    assert http_get(local_stack, f"/api/v1/jobs/runs/{event['run']['runId']}", token=reader).status_code == 404


def test_a_revoked_read_token_is_denied_after_the_cache_ttl(local_stack: RunningStack, seed: dict[str, Any]) -> None:
    # Given a read token whose allow decision is cached
    issued = admin(local_stack).create_token([], name="e2e revoke-me", scopes=["read"])
    primed_at = time.monotonic()
    assert http_get(local_stack, "/api/v1/namespaces", token=issued.token).status_code == 200
    cached_until_at_most = time.monotonic() + AUTH_CACHE_TTL
    # When it is revoked and the cache TTL has passed
    admin(local_stack).revoke_token(issued.record.token_id)
    time.sleep(max(0.0, cached_until_at_most - time.monotonic()) + 0.3)
    # Then the gateway denies it
    denied = http_get(local_stack, "/api/v1/namespaces", token=issued.token)
    assert time.monotonic() - primed_at > AUTH_CACHE_TTL
    assert denied.status_code == 403 and denied.json() == {"message": "Forbidden"}


def test_the_lineage_graph_is_served_over_http(local_stack: RunningStack, seed: dict[str, Any]) -> None:
    node = f"job:{local_stack.namespace}:{job(seed, 'email_discounts')}"
    answer = http_get(local_stack, "/api/v1/lineage", nodeId=node, depth=1)
    assert answer.status_code == 200
    graph = answer.json()
    assert {f"dataset:{DATASETS}:public.discounts", f"dataset:{DATASETS}:public.customers"} <= {
        n["id"] for n in graph["graph"]
    }
    assert_valid_response(graph, "/lineage")
