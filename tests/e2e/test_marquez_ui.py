"""Contract of Marquez's web UI (issue 14) on the local stack, read through ``lineage-intake ui-proxy`` as the UI's
server reads it (no token of its own): each endpoint the UI calls, each field it reads present with its type,
for the food_delivery seed and a dbt run family; shapes validated against Marquez's response schemas."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.helpers.local_stack import RunningStack
from tests.helpers.marquez_schema import assert_valid_component, assert_valid_response
from tests.helpers.stack_client import CLI
from tests.helpers.ui_seed import (
    COLUMN_LINEAGE,
    DATASET_TAGS,
    LIFECYCLE_CREATE,
    dbt_run,
    food_delivery,
    send_merged,
    ui_fields_run,
)

DATASETS = "food_delivery"
STRING, NUMBER = str, int


@pytest.fixture(scope="module")
def seeded(local_stack: RunningStack) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:6]
    food = food_delivery(local_stack, suffix)
    dbt = dbt_run(local_stack, suffix)
    send_merged(local_stack, food)
    send_merged(local_stack, dbt, ("COMPLETED", "FAILED"))
    return {"suffix": suffix, "food": food, "dbt": dbt}


@pytest.fixture(scope="module")
def proxy(local_stack: RunningStack) -> Iterator[str]:
    """``lineage-intake ui-proxy --port 0`` in a subprocess, with the stack's env file; stopped by its pid."""
    process = subprocess.Popen(
        [
            str(CLI),
            "ui-proxy",
            "--port",
            "0",
            "--env-file",
            str(local_stack.env_file),
        ],
        env=local_stack.cli_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    banner = process.stderr.readline()
    found = re.search(r"http://127\.0\.0\.1:(\d+)", banner)
    assert found, banner
    try:
        yield f"http://127.0.0.1:{found.group(1)}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        assert local_stack.read_token not in (process.stderr.read() or "")


def ui_get(proxy: str, path: str, query: str = "") -> Any:
    """A GET as the UI's server sends it: no Authorization header, the query string as the UI builds it."""
    answer = requests.get(proxy + path + (f"?{query}" if query else ""), timeout=30)
    assert answer.status_code == 200, (path, answer.status_code, answer.text)
    return answer.json()


def has(obj: dict[str, Any], **fields: type | tuple[type, ...]) -> None:
    for name, kind in fields.items():
        assert name in obj and isinstance(obj[name], kind), (name, obj.get(name))


def test_every_page_reads_namespaces_and_tags(proxy: str, seeded: dict[str, Any], local_stack: RunningStack) -> None:
    namespaces = ui_get(proxy, "/api/v1/namespaces")
    assert all(isinstance(n["name"], str) and isinstance(n["isHidden"], bool) for n in namespaces["namespaces"])
    tags = ui_get(proxy, "/api/v1/tags", "limit=1000")
    assert f"pii_{seeded['suffix']}" in [t["name"] for t in tags["tags"]]
    assert_valid_response(tags, "/tags")


def test_the_dashboard_reads_stats_and_all_jobs(proxy: str, seeded: dict[str, Any]) -> None:
    for period, size in (("DAY", 24), ("WEEK", 7)):
        events = ui_get(proxy, "/api/v1/stats/lineage-events", f"period={period}&timezone=America/New_York")
        assert isinstance(events, list) and len(events) == size
        for bucket in events:
            has(
                bucket,
                startInterval=STRING,
                endInterval=STRING,
                fail=NUMBER,
                start=NUMBER,
                complete=NUMBER,
                abort=NUMBER,
            )
        assert sum(b["start"] for b in events) >= sum(1 for e in seeded["food"] if e["eventType"] == "START")
        assert sum(b["fail"] for b in events) >= sum(1 for e in seeded["dbt"] if e["eventType"] == "FAIL")
        for kind in ("jobs", "datasets", "sources"):
            counts = ui_get(proxy, f"/api/v1/stats/{kind}", f"period={period}&timezone=Asia/Kolkata")
            assert len(counts) == size and max(b["count"] for b in counts) > 0
            for bucket in counts:
                has(bucket, startInterval=STRING, endInterval=STRING, count=NUMBER)
    jobs = ui_get(proxy, "/api/v1/jobs", "limit=10&offset=0")
    has(jobs, totalCount=NUMBER, jobs=list)
    assert jobs["totalCount"] >= 13 and len(jobs["jobs"]) == 10
    for job in jobs["jobs"]:
        has(job, id=dict, name=STRING, namespace=STRING, createdAt=STRING, updatedAt=STRING, type=STRING, tags=list)
        has(job["id"], namespace=STRING, name=STRING)
        if "latestRun" in job:
            has(job["latestRun"], state=STRING)
        assert all("state" in r for r in job["latestRuns"])
    failed = ui_get(proxy, "/api/v1/jobs", "limit=10&offset=0&lastRunStates=FAILED")
    assert failed["totalCount"] >= 1 and all(j["latestRun"]["state"] == "FAILED" for j in failed["jobs"])
    assert_valid_response(jobs, "/namespaces/{namespace}/jobs")


def test_jobs_and_datasets_pages_read_their_rows(proxy: str, seeded: dict[str, Any], local_stack: RunningStack) -> None:
    jobs = ui_get(proxy, f"/api/v1/namespaces/{quote(local_stack.namespace, safe='')}/jobs", "limit=20&offset=0")
    has(jobs, totalCount=NUMBER)
    for job in jobs["jobs"]:
        has(job, name=STRING, namespace=STRING, updatedAt=STRING)
    ours = [j for j in jobs["jobs"] if j["name"].endswith(seeded["suffix"])]
    assert ours and all(isinstance(j["latestRun"]["state"], str) for j in ours)
    datasets = ui_get(proxy, f"/api/v1/namespaces/{DATASETS}/datasets", "limit=20&offset=0")
    has(datasets, totalCount=NUMBER)
    for row in datasets["datasets"]:
        has(row, id=dict, name=STRING, sourceName=STRING, updatedAt=STRING, deleted=bool, facets=dict)
    assert_valid_response(datasets, "/namespaces/{namespace}/datasets")


def test_the_events_page_reads_events_newest_first(proxy: str, seeded: dict[str, Any]) -> None:
    food = seeded["food"]
    after, before = food[0]["eventTime"][:19] + ".000Z", "2999-01-01T00:00:00.000Z"
    page = ui_get(
        proxy, "/api/v1/events/lineage", f"limit=50&before={before}&after={after}&offset=0&sortDirection=desc"
    )
    has(page, totalCount=NUMBER, events=list)
    times = [e["eventTime"] for e in page["events"]]
    assert times == sorted(times, reverse=True) and page["events"]
    for event in page["events"]:
        has(event, eventType=STRING, eventTime=STRING)
        has(event["run"], runId=STRING)
        has(event["job"], name=STRING, namespace=STRING)


def test_the_lineage_graph_has_exact_node_ids_and_edges(
    proxy: str, seeded: dict[str, Any], local_stack: RunningStack
) -> None:
    ns, name = local_stack.namespace, f"etl_orders_7_days_{seeded['suffix']}"
    start = next(e for e in seeded["food"] if e["job"]["name"] == name and e["eventType"] == "START")
    graph = ui_get(proxy, "/api/v1/lineage", f"nodeId=job:{ns}:{name}&depth=2")
    nodes = {n["id"]: n for n in graph["graph"]}
    job_id = f"job:{ns}:{name}"
    inputs = {f"dataset:{i['namespace']}:{i['name']}" for i in start["inputs"]}
    outputs = {f"dataset:{o['namespace']}:{o['name']}" for o in start["outputs"]}
    assert nodes[job_id]["type"] == "JOB" and (inputs | outputs) <= set(nodes)
    assert {(e["origin"], e["destination"]) for e in nodes[job_id]["inEdges"]} == {(d, job_id) for d in inputs}
    assert {(e["origin"], e["destination"]) for e in nodes[job_id]["outEdges"]} == {(job_id, d) for d in outputs}
    for node in graph["graph"]:
        assert re.fullmatch(r"(job|dataset):[^:]+:.+", node["id"]) and node["type"] in ("JOB", "DATASET")
        if node["type"] == "JOB":
            has(node["data"], name=STRING, namespace=STRING, updatedAt=STRING)
            assert "description" in node["data"] or node["data"].get("description") is None
        else:
            has(node["data"], name=STRING, namespace=STRING, fields=list)
    assert_valid_response(graph, "/lineage")


def test_the_job_drawer_reads_job_runs_and_job_facets(
    proxy: str, seeded: dict[str, Any], local_stack: RunningStack
) -> None:
    ns, name = quote(local_stack.namespace, safe=""), f"etl_orders_7_days_{seeded['suffix']}"
    job = ui_get(proxy, f"/api/v1/namespaces/{ns}/jobs/{name}")
    has(job, name=STRING, namespace=STRING, createdAt=STRING, updatedAt=STRING, type=STRING, tags=list)
    has(job["latestRun"], id=STRING, startedAt=STRING, state=STRING, facets=dict)
    assert job["tags"] == [f"pii_{seeded['suffix']}"]
    for run in job["latestRuns"]:
        has(run, state=STRING, endedAt=STRING, durationMs=NUMBER)
    children = [e for e in seeded["dbt"] if e["run"].get("facets", {}).get("parent")]
    child = quote(children[0]["job"]["name"], safe="")
    assert ui_get(proxy, f"/api/v1/namespaces/{ns}/jobs/{child}")["parentJobName"].endswith(seeded["suffix"])
    runs = ui_get(proxy, f"/api/v1/namespaces/{ns}/jobs/{name}/runs", "limit=10&offset=0")
    has(runs, totalCount=NUMBER)
    for run in runs["runs"]:
        has(run, id=STRING, state=STRING, createdAt=STRING, startedAt=STRING, endedAt=STRING, durationMs=NUMBER)
    facets = ui_get(proxy, f"/api/v1/jobs/runs/{job['latestRun']['id']}/facets", "type=job")
    assert isinstance(facets["facets"]["sql"]["query"], str)
    assert_valid_component(job, "Job")


def test_the_dataset_drawer_reads_fields_column_lineage_and_versions(proxy: str, seeded: dict[str, Any]) -> None:
    path = f"/api/v1/namespaces/{DATASETS}/datasets/public.orders_7_days"
    dataset = ui_get(proxy, path)
    has(dataset, name=STRING, tags=list, createdAt=STRING, type=STRING, facets=dict, fields=list)
    for item in dataset["fields"]:
        has(item, name=STRING, type=STRING, tags=list)
    versions = ui_get(proxy, path + "/versions", "limit=10&offset=0")
    has(versions, totalCount=NUMBER)
    assert versions["totalCount"] >= 1
    for version in versions["versions"]:
        has(version, version=STRING, createdAt=STRING, fields=list, facets=dict, createdByRun=dict)
        has(version["createdByRun"], id=STRING)
    assert_valid_response(versions, "/namespaces/{namespace}/datasets/{dataset}/versions")
    columns = ui_get(
        proxy, "/api/v1/column-lineage", f"nodeId=dataset:{DATASETS}:public.orders_7_days&depth=2&withDownstream=true"
    )
    for node in columns["graph"]:
        assert node["id"].startswith("datasetField:") and {"namespace", "dataset", "field"} <= set(node["data"])


def test_search_takes_the_uis_raw_query(proxy: str, seeded: dict[str, Any]) -> None:
    for query in (
        "q=orders 7&sort=NAME&limit=100",
        "q=100%&sort=UPDATE_AT&limit=100",
        "q=orders&sort=NAME&limit=100&filter=DATASET",
    ):
        found = ui_get(proxy, "/api/v1/search", query)
        for result in found["results"]:
            has(result, type=STRING, name=STRING, namespace=STRING, nodeId=STRING, updatedAt=STRING)
    hits = ui_get(proxy, "/api/v1/search", f"q=etl_orders_7_days_{seeded['suffix']}&sort=NAME&limit=100&filter=JOB")
    assert [r["nodeId"] for r in hits["results"]] == [
        f"job:{hits['results'][0]['namespace']}:etl_orders_7_days_{seeded['suffix']}"
    ]


def test_the_uis_writes_are_refused_with_403(proxy: str, seeded: dict[str, Any], local_stack: RunningStack) -> None:
    ns = quote(local_stack.namespace, safe="")
    answer = requests.delete(f"{proxy}/api/v1/namespaces/{ns}/jobs/etl_orders_7_days_{seeded['suffix']}", timeout=30)
    assert answer.status_code == 403 and "read-only" in answer.json()["message"]


def test_dataset_rows_and_versions_carry_tags_column_lineage_and_lifecycle(
    proxy: str, seeded: dict[str, Any], local_stack: RunningStack
) -> None:
    # Given a run whose output (in its own namespace) has tags, columnLineage and lifecycleStateChange facets
    namespace = f"ui_fields_{seeded['suffix']}"
    facets = {"tags": DATASET_TAGS, "columnLineage": COLUMN_LINEAGE, "lifecycleStateChange": LIFECYCLE_CREATE}
    when = datetime.now(UTC) - timedelta(minutes=10)
    send_merged(local_stack, ui_fields_run(local_stack.namespace, f"ui_fields_job_{seeded['suffix']}", namespace,
                                           str(uuid.uuid4()), when, facets))  # fmt: skip
    # When the datasets page and the dataset drawer's version history read it through the proxy
    rows = ui_get(proxy, f"/api/v1/namespaces/{namespace}/datasets", "limit=20&offset=0")
    versions = ui_get(proxy, f"/api/v1/namespaces/{namespace}/datasets/public.ui_fields/versions", "limit=10&offset=0")
    tags = ui_get(proxy, "/api/v1/tags", "limit=1000")
    # Then the row's columnLineage is truthy (the page's VIEW link) and names the derived field, tags are listed
    (row,) = rows["datasets"]
    assert [c["name"] for c in row["columnLineage"]] == ["total"] and row["tags"] == ["domain:sales", "pii"]
    assert {"domain:sales", "pii"} <= {t["name"] for t in tags["tags"]}
    # And the version's lifecycleState is the facet's; its dates are the run's, not 1970
    (version,) = versions["versions"]
    assert version["lifecycleState"] == "CREATE" and not row["createdAt"].startswith("1970")
    assert_valid_response(rows, "/namespaces/{namespace}/datasets")
    assert_valid_response(versions, "/namespaces/{namespace}/datasets/{dataset}/versions")
