"""The read function on moto: the Marquez food_delivery seed goes through ingest and the merge, then is read
over the function's GET routes, each answer checked for content and against Marquez's response schema."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.helpers.api_request import api_get as get
from tests.helpers.corpus import corpus_json
from tests.helpers.marquez_schema import assert_valid_response
from tests.helpers.pipeline import Pipeline

SEED = "marquez/docker/metadata.json"
NS = "food_delivery"


@pytest.fixture
def seeded(pipeline: Pipeline) -> list[dict[str, Any]]:
    events = corpus_json(SEED)
    pipeline.send(*events)
    return events


def jobs_of(events: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield from (e for e in events if e["eventType"] == "START")


# ---------------------------------------------------------------------------------------------- scopes
def test_a_write_only_token_gets_403_naming_the_read_scope(api, lambda_context, seeded) -> None:
    status, body = get(api, lambda_context, "/api/v1/namespaces", scopes='["write"]')
    assert status == 403
    assert body["code"] == 403 and "lacks the 'read' scope" in body["message"]


def test_a_request_without_authorizer_context_fails_closed(api, lambda_context, seeded) -> None:
    status, body = get(api, lambda_context, "/api/v1/namespaces", scopes=None)
    assert status == 403 and body["details"] is None


# ---------------------------------------------------------------------------------------------- catalog
def test_namespaces_jobs_and_datasets_list_the_seed_in_marquez_shapes(api, lambda_context, seeded) -> None:
    # Given the food_delivery seed merged; When the listings are read
    status, namespaces = get(api, lambda_context, "/api/v1/namespaces")
    _, jobs = get(api, lambda_context, f"/api/v1/namespaces/{NS}/jobs", {"limit": 5, "offset": 2})
    _, datasets = get(api, lambda_context, f"/api/v1/namespaces/{NS}/datasets")
    # Then they hold the seed's namespace, jobs (by name, paged) and datasets, each valid for Marquez
    assert status == 200
    assert [n["name"] for n in namespaces["namespaces"]] == [NS]
    names = sorted(e["job"]["name"] for e in jobs_of(seeded))
    assert jobs["totalCount"] == len(names) == 13
    assert [j["name"] for j in jobs["jobs"]] == names[2:7]
    expected = sorted({d["name"] for e in seeded for d in [*e.get("inputs", []), *e.get("outputs", [])]})
    listed = [d["name"] for d in datasets["datasets"]]
    # (merge v2 also records the datasets that column-lineage facets name, so the listing may hold more)
    assert set(expected) <= set(listed) and listed == sorted(listed)
    assert datasets["totalCount"] == len(listed)
    assert_valid_response(namespaces, "/namespaces")
    assert_valid_response(jobs, "/namespaces/{namespace}/jobs")
    assert_valid_response(datasets, "/namespaces/{namespace}/datasets")


def test_a_job_its_runs_and_a_run_by_id_are_read_with_their_lineage(api, lambda_context, seeded) -> None:
    start = next(e for e in jobs_of(seeded) if e["job"]["name"] == "etl_orders_7_days")
    run_id = start["run"]["runId"]
    _, job = get(api, lambda_context, f"/api/v1/namespaces/{NS}/jobs/etl_orders_7_days")
    _, runs = get(api, lambda_context, f"/api/v1/namespaces/{NS}/jobs/etl_orders_7_days/runs")
    _, run = get(api, lambda_context, f"/api/v1/jobs/runs/{run_id}")
    _, facets = get(api, lambda_context, f"/api/v1/jobs/runs/{run_id}/facets", {"type": "job"})
    assert sorted(i["name"] for i in job["inputs"]) == sorted(i["name"] for i in start["inputs"])
    assert [o["name"] for o in job["outputs"]] == ["public.orders_7_days"]
    assert job["latestRun"]["id"] == run_id and job["latestRun"]["state"] == "COMPLETED"
    assert runs["totalCount"] == 1 and runs["runs"][0]["id"] == run_id
    assert run["state"] == "COMPLETED" and run["durationMs"] >= 0
    assert facets["facets"]["sql"] == start["job"]["facets"]["sql"]
    assert_valid_response(job, "/namespaces/{namespace}/jobs/{job}")
    assert_valid_response(runs, "/namespaces/{namespace}/jobs/{job}/runs")
    assert_valid_response(run, "/jobs/runs/{id}")


def test_unknown_things_get_404_in_marquez_error_shape(api, lambda_context, seeded) -> None:
    for path in (
        "/api/v1/namespaces/nope",
        "/api/v1/namespaces/nope/jobs",
        f"/api/v1/namespaces/{NS}/jobs/nope",
        f"/api/v1/namespaces/{NS}/datasets/nope",
        "/api/v1/jobs/runs/00000000-0000-0000-0000-000000000000",
    ):
        status, body = get(api, lambda_context, path)
        assert status == 404, path
        assert set(body) == {"code", "message", "details"} and body["code"] == 404 and "not found" in body["message"]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"limit": "x"}, "limit"),
        ({"limit": "100000"}, "limit"),
        ({"offset": "-1"}, "offset"),
    ],
)
def test_bad_paging_gets_400_naming_the_parameter(api, lambda_context, seeded, query, parameter) -> None:
    status, body = get(api, lambda_context, "/api/v1/namespaces", query)
    assert status == 400 and body["message"].startswith(f"{parameter}:")


def test_a_wrong_url_gets_a_404_that_names_the_right_endpoints(api, lambda_context) -> None:
    status, body = get(api, lambda_context, "/api/v1/api/v1/lineage")
    assert status == 404
    assert "POST events to /api/v1/lineage" in body["message"] and "OPENLINEAGE_URL is the base URL" in body["message"]


# ---------------------------------------------------------------------------------------------- graphs
def test_the_seed_graph_has_every_jobs_inputs_and_outputs_as_edges_in_both_directions(
    api, lambda_context, seeded
) -> None:
    # When the graph around the last job of the seed is read deep enough to reach everything
    status, graph = get(api, lambda_context, "/api/v1/lineage", {"nodeId": f"job:{NS}:email_discounts", "depth": 20})
    assert status == 200 and graph["truncated"] is False
    nodes = {n["id"]: n for n in graph["graph"]}
    # Then every job's inputs and outputs are edges, on the origin's outEdges and on the destination's inEdges
    for start in jobs_of(seeded):
        job_id = f"job:{NS}:{start['job']['name']}"
        for dataset in start.get("inputs", []):
            edge = {"origin": f"dataset:{NS}:{dataset['name']}", "destination": job_id}
            assert edge in [{k: e[k] for k in ("origin", "destination")} for e in nodes[job_id]["inEdges"]]
            assert edge in [{k: e[k] for k in ("origin", "destination")} for e in nodes[edge["origin"]]["outEdges"]]
        for dataset in start.get("outputs", []):
            edge = {"origin": job_id, "destination": f"dataset:{NS}:{dataset['name']}"}
            assert edge in [{k: e[k] for k in ("origin", "destination")} for e in nodes[job_id]["outEdges"]]
            assert edge in [{k: e[k] for k in ("origin", "destination")} for e in nodes[edge["destination"]]["inEdges"]]
    assert all(e.get("current") is True for n in graph["graph"] for e in n["inEdges"] + n["outEdges"])
    assert_valid_response(graph, "/lineage")


def test_depth_limits_the_walk(api, lambda_context, seeded) -> None:
    # Given email_discounts, which reads discounts (written by delivery_times_7_days) and customers (written by
    # etl_customers, also read by etl_delivery_7_days and orders_popular_day_of_week)
    def job_names(depth: int) -> set[str]:
        _, graph = get(api, lambda_context, "/api/v1/lineage", {"nodeId": f"job:{NS}:email_discounts", "depth": depth})
        return {n["id"].split(":", 2)[2] for n in graph["graph"] if n["type"] == "JOB"}

    # Then depth 0 holds the start job only, and each step adds the jobs one hop further
    assert job_names(0) == {"email_discounts"}
    one_hop = {"delivery_times_7_days", "etl_customers", "etl_delivery_7_days", "orders_popular_day_of_week"}
    assert job_names(1) == {"email_discounts"} | one_hop
    assert "etl_orders_7_days" in job_names(2) and "etl_orders_7_days" not in job_names(1)
    assert len(job_names(20)) == 13


def test_a_bad_node_id_gets_400_and_an_unknown_one_404(api, lambda_context, seeded) -> None:
    assert get(api, lambda_context, "/api/v1/lineage", {"nodeId": "table:x"})[0] == 400
    assert get(api, lambda_context, "/api/v1/lineage", {})[1]["message"].startswith("nodeId:")
    assert get(api, lambda_context, "/api/v1/lineage", {"nodeId": f"dataset:{NS}:nope"})[0] == 404


# ---------------------------------------------------------------------------------------------- names
@pytest.mark.parametrize("name", ["s3://bucket/a/b.parquet", "db:5432/schema.table", "naïve tåble #1 ✓"])
def test_names_with_slashes_colons_and_unicode_round_trip(api, lambda_context, pipeline, name) -> None:
    # Given a run that writes a dataset with such a name, in a namespace that is a URI
    namespace = "postgres://db:5432"
    events = copy.deepcopy(corpus_json(SEED)[:2])
    for event in events:
        event["job"]["namespace"] = namespace
        event["job"]["name"] = f"job {name}"
    events[0]["outputs"] = [{"namespace": namespace, "name": name}]
    pipeline.send(*events)
    # When it is read by encoded path segments and by node id
    ns, ds = quote(namespace, safe=""), quote(name, safe="")
    status, dataset = get(api, lambda_context, f"/api/v1/namespaces/{ns}/datasets/{ds}")
    _, job = get(api, lambda_context, f"/api/v1/namespaces/{ns}/jobs/{quote('job ' + name, safe='')}")
    _, graph = get(api, lambda_context, "/api/v1/lineage", {"nodeId": f"dataset:{namespace}:{name}", "depth": 1})
    # Then the names come back exactly
    assert status == 200 and (dataset["namespace"], dataset["name"]) == (namespace, name)
    assert job["outputs"] == [{"namespace": namespace, "name": name}]
    assert {n["id"] for n in graph["graph"]} == {f"dataset:{namespace}:{name}", f"job:{namespace}:job {name}"}


# ---------------------------------------------------------------------------------------------- events, search
def test_events_are_listed_newest_first_with_paging(api, lambda_context, seeded) -> None:
    window = {"after": "2020-02-22T00:00:00Z", "before": "2020-02-23T23:59:59Z"}
    status, page = get(api, lambda_context, "/api/v1/events/lineage", {**window, "limit": 5})
    _, rest = get(api, lambda_context, "/api/v1/events/lineage", {**window, "limit": 100, "offset": 5})
    assert status == 200 and page["totalCount"] == len(seeded)
    times = [e["eventTime"] for e in page["events"] + rest["events"]]
    assert times == sorted(times, reverse=True) and len(times) == len(seeded)
    assert sorted(json.dumps(e, sort_keys=True) for e in page["events"] + rest["events"]) == sorted(
        json.dumps(e, sort_keys=True) for e in seeded
    )
    assert_valid_response(page, "/events/lineage")


def test_search_finds_jobs_and_datasets_whose_name_contains_q(api, lambda_context, seeded) -> None:
    _, found = get(api, lambda_context, "/api/v1/search", {"q": "DELIVERY", "limit": 100})
    names = {(r["type"], r["name"]) for r in found["results"]}
    assert ("JOB", "etl_delivery_7_days") in names and ("DATASET", "public.delivery_7_days") in names
    assert all("delivery" in r["name"].lower() for r in found["results"])
    _, only_jobs = get(api, lambda_context, "/api/v1/search", {"q": "delivery", "filter": "JOB", "limit": 100})
    assert {r["type"] for r in only_jobs["results"]} == {"JOB"}
    assert_valid_response(found, "/search")


def test_the_openapi_document_lists_the_read_routes(api, lambda_context) -> None:
    status, document = get(api, lambda_context, "/api/v1/openapi.json")
    assert status == 200
    assert {"/api/v1/lineage", "/api/v1/namespaces/{namespace}/jobs/{job}", "/api/v1/events/lineage"} <= set(
        document["paths"]
    )


# ---------------------------------------------------------------------------------------------- run lineage
def chain_event(job: str, run_id: str, kind: str, at: str, inputs: list[str], outputs: list[str]) -> dict[str, Any]:
    return {
        "eventType": kind,
        "eventTime": at,
        "producer": "https://example.com/tests",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id},
        "job": {"namespace": "chain", "name": job},
        "inputs": [{"namespace": "chain", "name": n} for n in inputs],
        "outputs": [{"namespace": "chain", "name": n} for n in outputs],
    }


def test_run_lineage_finds_the_runs_that_produced_a_runs_inputs(api, lambda_context, pipeline) -> None:
    # Given extract writes raw (run e1 ends 10:05; run e2 ends 11:30, after load started), then load reads raw
    # and writes clean (starts 11:00), and report reads clean (starts 12:00)
    e1, e2, load, report = (str(uuid.uuid4()) for _ in range(4))
    runs = [
        ("extract", e1, "2026-01-01T10:00:00Z", "2026-01-01T10:05:00Z", [], ["raw"]),
        ("extract", e2, "2026-01-01T11:20:00Z", "2026-01-01T11:30:00Z", [], ["raw"]),
        ("load", load, "2026-01-01T11:00:00Z", "2026-01-01T11:10:00Z", ["raw"], ["clean"]),
        ("report", report, "2026-01-01T12:00:00Z", "2026-01-01T12:01:00Z", ["clean"], []),
    ]
    for job, run_id, start, end, inputs, outputs in runs:
        pipeline.send(
            chain_event(job, run_id, "START", start, inputs, outputs),
            chain_event(job, run_id, "COMPLETE", end, inputs, outputs),
        )
    # When the upstream run lineage of the report run is read
    status, answer = get(api, lambda_context, "/api/v1/runlineage/upstream", {"runId": report, "depth": 5})
    # Then it holds report, the load run that produced clean, and the extract run that ended before load began
    assert status == 200 and answer["truncated"] is False
    assert [(r["job"]["name"], r["run"]["id"]) for r in answer["runs"]] == [
        ("report", report),
        ("load", load),
        ("extract", e1),
    ]
    assert answer["runs"][0]["inputs"][0]["producedByRunId"] == load
    assert answer["runs"][1]["inputs"][0]["producedByRunId"] == e1
    assert_valid_response(answer, "/runlineage/upstream")
    # And depth 0 stops at the run itself
    _, shallow = get(api, lambda_context, "/api/v1/runlineage/upstream", {"runId": report, "depth": 0})
    assert [r["run"]["id"] for r in shallow["runs"]] == [report]
