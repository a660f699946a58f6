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
SAMPLES = int(os.environ.get("READ_BENCH_SAMPLES", "60"))
#: Graph walks take seconds to minutes each on moto: few samples (their p99 is then their maximum).
GRAPH_SAMPLES = int(os.environ.get("READ_BENCH_GRAPH_SAMPLES", "5"))
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
    from fast_moto import fast_moto, freeze, moto_table
    from lineage_intake import keys
    from lineage_intake.merge import StoredEvent, merge_run, ordered
    from lineage_intake.models import parse_event
    from lineage_intake.service.ingest import canonical_json, describe, event_id_of
    from lineage_intake.store.lineage import LineageStore, StoredRun
    from lineage_intake_tools.local.template import Stack

    stack = Stack.from_template(prefix="readbench")
    session = boto3.Session(region_name="us-east-1")
    dynamodb = session.client("dynamodb")
    for logical in ("LineageTable", "EventsTable"):  # Events stays empty: the job view folds no run facets
        dynamodb.create_table(**stack.table_definition(logical))
    env = stack.function("ApiFunction").environment
    table = env["LINEAGE_TABLE"]
    lineage = LineageStore(dynamodb, table)

    def stored(raw: dict[str, Any]) -> StoredEvent:
        """An event as the merge reads it back from the Events table: validated, canonical, keyed as ingest keys it."""
        described = describe(parse_event(raw))
        plain = canonical_json(raw)
        assert described.event_time is not None
        return StoredEvent(described.event_time, event_id_of(plain), described.event_type, json.loads(plain))

    started = time.perf_counter()
    with fast_moto():
        for job in range(JOBS):
            minute = f"{job // 60:02d}:{job % 60:02d}"
            pair = _events(job, f"2026-01-01T{minute}:00Z", f"2026-01-01T{minute}:30Z")
            merged = merge_run(ordered(stored(e) for e in pair))
            assert merged is not None and merged.status == "merged", merged
            written = lineage.write_run(merged, f"2026-01-01T{minute}:31.000000Z", StoredRun())
            assert written.written and not written.superseded, written
            if (job + 1) % 250 == 0 and job + 1 < JOBS:
                yield f"  ... {job + 1} runs written in {time.perf_counter() - started:.0f} s"
        freeze(moto_table(table))
        seeded = time.perf_counter() - started
        yield (
            f"  graph: {JOBS} jobs, {2 * JOBS} datasets, {JOBS} START+COMPLETE runs folded by merge_run and written "
            f"by LineageStore.write_run (the merge's writers; the Events table is created empty) in {seeded:.1f} s"
        )
        yield from _measure(stack, dynamodb, table, keys)


def _measure(stack: Any, dynamodb: Any, table: str, keys: Any) -> Iterator[str]:
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

    # Anchors: one raw GetItem of the job item, one raw Query of its partition, one raw gsi1 Query of a dataset.
    middle = f"job-{JOBS // 2}"
    raw = {
        "GetItem": lambda: dynamodb.get_item(
            TableName=table, Key={"pk": {"S": keys.job_key(NS, middle)}, "sk": {"S": "JOB"}}
        ),
        "Query": lambda: dynamodb.query(
            TableName=table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": keys.job_key(NS, middle)}},
        ),
        "gsi1 Query": lambda: dynamodb.query(
            TableName=table,
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :p",
            ExpressionAttributeValues={":p": {"S": keys.dataset_key(NS, f"out-{JOBS // 2}")}},
        ),
    }
    anchors = {name: _percentiles(_timed(read, SAMPLES)) for name, read in raw.items()}
    anchor = "; ".join(f"{name} p50 {p50:.1f} p99 {p99:.1f} ms" for name, (p50, p99) in anchors.items())
    yield f"  anchors, raw reads on the same moto in the same run ({SAMPLES} each): {anchor}"

    job_path = f"/api/v1/namespaces/{NS}/jobs/{quote(middle, safe='')}"
    cases = {
        "get_job": (job_path, None, SAMPLES),
        "list_job_runs": (job_path + "/runs", None, SAMPLES),
        **{
            f"GET /lineage depth {depth}": ("/api/v1/lineage", {"nodeId": start_node, "depth": depth}, GRAPH_SAMPLES)
            for depth in (2, 5, 10)
        },
        "column-lineage depth 5": (
            "/api/v1/column-lineage",
            {"nodeId": f"dataset:{NS}:out-{JOBS // 2}", "depth": 5},
            GRAPH_SAMPLES,
        ),
    }
    get_p50, get_p99 = anchors["GetItem"]
    for name, (path, query, samples) in cases.items():
        p50, p99 = _percentiles(_timed(lambda path=path, query=query: call(path, query), samples))
        yield (
            f"  {name:<24} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms ({samples} samples)   "
            f"[anchor: one raw GetItem p50 {get_p50:.1f} ms, p99 {get_p99:.1f} ms]"
        )


def _timed(work: Any, samples: int) -> list[float]:
    times = []
    for _ in range(samples):
        begin = time.perf_counter()
        work()
        times.append(time.perf_counter() - begin)
    return times


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
