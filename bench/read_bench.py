"""Read API benchmarks on a generated graph of 1,000 jobs and 2,000 datasets, each figure next to its anchor.

The graph: job ``j`` (0..999) writes ``out-j`` and reads ``src-j``, ``out-(j-1)`` and ``out-(j//2)``, so the
walk fans out both ways (1,000 ``src-*`` + 1,000 ``out-*`` datasets). One START+COMPLETE run per job goes
through ingest's code and the merge's code (``MergeService.merge_run``) into moto, as the stack would write it.
The read function runs in process, its handler called with HTTP API payload 2.0 requests (the local stack's
front adds its HTTP hop on top: ``e2e_bench`` measures that hop for ingest).

1. **DynamoDB requests per node visited** by ``GET /lineage`` at depths 2, 5 and 10 (counted with a botocore
   hook on the function's own client). Target: at most 1.
2. **DynamoDB requests of the web UI's dashboard calls** (``/stats/*``: one Query per UTC hour of the window;
   ``/jobs`` and a namespace's jobs: one gsi1 Query per row), each next to its bound.
3. **p50 and p99 answer times** of ``get_job``, ``list_job_runs``, ``GET /lineage`` (depth 5) and
   ``column-lineage``. **Anchor:** one raw ``GetItem`` of a job item on the same moto, in the same run.

Run standalone: ``python bench/read_bench.py`` (or ``make bench``).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT / "tools"), str(ROOT / "functions" / "api")]

JOBS = int(os.environ.get("READ_BENCH_JOBS", "1000"))  # smaller for a quick check
NS = "bench"
SAMPLES = 60
REQUEST = json.loads((ROOT / "events" / "ingest-start.json").read_text())


def _events(job: int, start: str, end: str) -> list[dict[str, Any]]:
    inputs = [f"src-{job}"] + ([f"out-{job - 1}"] if job else []) + ([f"out-{job // 2}"] if job > 1 else [])
    run_id = str(uuid.uuid4())
    fields = [{"name": "id", "type": "INT"}, {"name": "value", "type": "STRING"}]
    column_lineage = {
        f["name"]: {"inputFields": [{"namespace": NS, "name": i, "field": f["name"]} for i in inputs]} for f in fields
    }
    spec = "https://openlineage.io/spec/facets"
    output = {
        "namespace": NS,
        "name": f"out-{job}",
        "facets": {
            "schema": {"_producer": "bench", "_schemaURL": f"{spec}/1-1-1/SchemaDatasetFacet.json", "fields": fields},
            "columnLineage": {
                "_producer": "bench",
                "_schemaURL": f"{spec}/1-2-0/ColumnLineageDatasetFacet.json",
                "fields": column_lineage,
            },
        },
    }
    base = {
        "producer": "https://example.com/bench",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id},
        "job": {"namespace": NS, "name": f"job-{job}"},
        "inputs": [{"namespace": NS, "name": n} for n in inputs],
        "outputs": [output],
    }
    return [{**copy.deepcopy(base), "eventType": "START", "eventTime": start},
            {**copy.deepcopy(base), "eventType": "COMPLETE", "eventTime": end}]  # fmt: skip


def _request(path: str, query: dict[str, Any] | None = None) -> dict[str, Any]:
    event = copy.deepcopy(REQUEST)
    event.update(body=None, isBase64Encoded=False, rawPath=path, rawQueryString=urlencode(query or {}))
    event["routeKey"] = event["requestContext"]["routeKey"] = "GET /api/v1/{proxy+}"
    event["requestContext"]["http"].update(method="GET", path=path)
    event["requestContext"]["authorizer"]["lambda"]["scopes"] = '["read"]'
    return event


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


class _Counter:
    """Counts the DynamoDB requests a botocore client sends (one per API call, retries included)."""

    def __init__(self, client: Any) -> None:
        self.count = 0
        client.meta.events.register("before-send.dynamodb.*", self._sent)

    def _sent(self, **_: Any) -> None:
        self.count += 1


def run() -> Iterator[str]:
    from moto import mock_aws

    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    with mock_aws():
        yield from _run()


def _run() -> Iterator[str]:
    import boto3
    from lineage_intake import keys
    from lineage_intake.config import IngestSettings
    from lineage_intake.principal import Principal
    from lineage_intake.service.ingest import IngestService
    from lineage_intake.service.merge import MergeService
    from lineage_intake.store.events import EventsStore
    from lineage_intake.store.lineage import LineageStore
    from lineage_intake_tools.local.template import Stack

    stack = Stack.from_template(prefix="readbench")
    session = boto3.Session(region_name="us-east-1")
    dynamodb = session.client("dynamodb")
    for logical in ("EventsTable", "LineageTable"):
        dynamodb.create_table(**stack.table_definition(logical))
    env = stack.function("MergeFunction").environment
    session.client("s3").create_bucket(Bucket=env["BODY_BUCKET"])
    events = EventsStore(dynamodb, env["EVENTS_TABLE"], env["BODY_BUCKET"], lambda: session.client("s3"))
    ingest = IngestService(
        events, IngestSettings.from_env(stack.function("IngestFunction").environment), lambda _o: None
    )
    merge = MergeService(events, LineageStore(dynamodb, env["LINEAGE_TABLE"]), lambda _o: None, grace=None)  # type: ignore[arg-type]
    principal = Principal("tok_bench", frozenset({NS}), frozenset({"write"}))
    started = time.perf_counter()
    run_ids = []
    for job in range(JOBS):
        minute = f"{job // 60:02d}:{job % 60:02d}"
        pair = _events(job, f"2026-01-01T{minute}:00Z", f"2026-01-01T{minute}:30Z")
        for event in pair:
            ingest.store_event(event, principal)
        run_ids.append(pair[0]["run"]["runId"])
        outcome = merge.merge_run(NS, f"job-{job}", run_ids[-1])
        assert outcome.status == "merged", outcome
    yield f"  graph: {JOBS} jobs, {2 * JOBS} datasets, {JOBS} runs merged in {time.perf_counter() - started:.1f} s"

    for key, value in stack.function("ApiFunction").environment.items():
        os.environ[key] = value
    spec = importlib.util.spec_from_file_location("api_app_bench", ROOT / "functions" / "api" / "app.py")
    assert spec is not None and spec.loader is not None
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    catalog = app._services()[0]
    counter = _Counter(catalog.lineage.dynamodb)
    arn = "arn:aws:lambda:us-east-1:123456789012:function:api"
    context = type(
        "Context",
        (),
        {"function_name": "api", "memory_limit_in_mb": 512, "aws_request_id": "bench", "invoked_function_arn": arn},
    )()

    def call(path: str, query: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = app.handler(_request(path, query), context)
        assert answer["statusCode"] == 200, (path, answer["body"][:300])
        body: dict[str, Any] = json.loads(answer["body"])
        return body

    start_node = f"job:{NS}:job-{JOBS // 2}"
    for depth in (2, 5, 10):
        before = counter.count
        graph = call("/api/v1/lineage", {"nodeId": start_node, "depth": depth})
        requests, nodes = counter.count - before, len(graph["graph"])
        truncated = ", truncated at the node cap" if graph["truncated"] else ""
        yield (
            f"  GET /lineage depth {depth:>2}: {requests} DynamoDB requests for {nodes} nodes = "
            f"{requests / nodes:.2f} per node{truncated}   [target: <= 1]"
        )

    # Marquez's web UI (issue 14): requests per dashboard and listing call, next to what bounds them.
    ui_calls = {
        "GET /stats/lineage-events DAY": (
            "/api/v1/stats/lineage-events",
            {"period": "DAY"},
            "one Query per UTC hour = 24",
        ),
        "GET /stats/jobs WEEK": (
            "/api/v1/stats/jobs",
            {"period": "WEEK", "timezone": "UTC"},
            "one Query per UTC hour = 168",
        ),
        "GET /jobs limit 10": ("/api/v1/jobs", {"limit": 10}, "1 namespace: 2 + 1 per namespace + 2 + 1 per row = 15"),
        "GET /namespaces/{ns}/jobs 20": (f"/api/v1/namespaces/{NS}/jobs", {"limit": 20}, "4 + 1 per row = 24"),
    }
    for name, (path, query, bound) in ui_calls.items():
        before = counter.count
        call(path, query)
        yield f"  {name:<32} {counter.count - before:>4} DynamoDB requests   [anchor: {bound}]"

    job_path = f"/api/v1/namespaces/{NS}/jobs/{quote(f'job-{JOBS // 2}', safe='')}"
    cases = {
        "get_job": (job_path, None),
        "list_job_runs": (job_path + "/runs", None),
        "GET /lineage depth 5": ("/api/v1/lineage", {"nodeId": start_node, "depth": 5}),
        "column-lineage depth 5": ("/api/v1/column-lineage", {"nodeId": f"dataset:{NS}:out-{JOBS // 2}", "depth": 5}),
    }
    raw_times = []
    job_key = {"pk": {"S": keys.job_key(NS, f"job-{JOBS // 2}")}, "sk": {"S": "JOB"}}
    for _ in range(SAMPLES):
        begin = time.perf_counter()
        dynamodb.get_item(TableName=env["LINEAGE_TABLE"], Key=job_key)
        raw_times.append(time.perf_counter() - begin)
    raw_p50, raw_p99 = _percentiles(raw_times)
    query_times = []
    dataset_key = {
        ":p": {"S": f"D#{__import__('lineage_intake.keys', fromlist=['digest']).digest(NS, f'out-{JOBS // 2}')}"}
    }
    for _ in range(SAMPLES // 3):
        begin = time.perf_counter()
        dynamodb.query(
            TableName=env["LINEAGE_TABLE"], IndexName="gsi1", KeyConditionExpression="gsi1pk = :p",
            ExpressionAttributeValues=dataset_key,
        )  # fmt: skip
        query_times.append(time.perf_counter() - begin)
    query_p50, _ = _percentiles(query_times)
    yield (
        f"  anchors (same moto, same run): one GetItem p50 {raw_p50:.1f} ms, p99 {raw_p99:.1f} ms; "
        f"one gsi1 Query p50 {query_p50:.1f} ms (moto reads a GSI by scanning the table)"
    )
    for name, (path, query) in cases.items():
        samples = []
        for _ in range(SAMPLES if "lineage" not in name else SAMPLES // 3):
            begin = time.perf_counter()
            call(path, query)
            samples.append(time.perf_counter() - begin)
        p50, p99 = _percentiles(samples)
        yield (
            f"  {name:<24} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms   "
            f"[anchor: one raw GetItem p50 {raw_p50:.1f} ms, p99 {raw_p99:.1f} ms; gsi1 Query p50 {query_p50:.1f} ms]"
        )


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
