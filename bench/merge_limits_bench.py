"""Bounded merge work (issue 13): a run at ingest's documented limits merges well inside the function's timeout.

A run at the limits (README "Limits", ``lineage_intake.limits``): START and COMPLETE, each with 1,000 inputs
and 1,000 outputs, the first output with a ``schema`` facet of 5,000 fields and a ``columnLineage`` facet of
20,000 input fields (4 per field). Runs at 1/10 and 1/5 of every limit show how the work grows (linear: 2x).
**Anchor:** an ordinary run, Marquez's seed ``etl_orders_7_days`` (4 inputs, 1 output), merged the same way in
the same process. Every run is the first run of its own job, in a namespace of its own (the merge's most
expensive path: it writes the job's lineage, every edge, dataset and column edge).

How: tables from ``template.yaml`` on moto in process, with the local stack's ``moto_lock`` installed (moto's own
``TransactWriteItems`` copies the whole table per call, which made this merge quadratic in moto alone: over 10
minutes and 6 GB); both events go through ``IngestService.store_event``
(so ingest accepts them: they are within the limits), then each is handed to ``MergeService.handle`` as its own
stream record, as the stream delivers a run's events. The COMPLETE's merge is the figure: wall time (best of
``REPEAT``), and the peak of Python allocations during it (``tracemalloc``, in a separate merge, since tracing
slows Python down). Both include moto's own work in this process (parsing requests, storing items), so they
are upper bounds of what the Lambda function does; the CPU seconds of the same merge (``process_time``) are
printed beside the wall time, since other processes on a shared machine stretch the wall time only. The bound:
the template's ``Timeout`` and ``MemorySize``.

Run: ``python bench/merge_limits_bench.py`` (or ``make bench``).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT / "tools"), str(ROOT)]

SEED = ROOT / "tests" / "fixtures" / "corpus" / "marquez" / "docker" / "metadata.json"
SEED_JOB = "etl_orders_7_days"
REPEAT = int(os.environ.get("MERGE_LIMITS_REPEAT", "1"))
#: Fractions of the limits to merge: the last one is the figure; ``MERGE_LIMITS_SCALES=0.05,0.1`` for a quick run.
SCALES = tuple(float(x) for x in os.environ.get("MERGE_LIMITS_SCALES", "0.1,0.2,1.0").split(","))
#: A run at the limits must merge in at most this share of the function's timeout ("well inside").
TIMEOUT_SHARE = 0.25


def limit_run(scale: float) -> list[dict[str, Any]]:
    """START and COMPLETE at ``scale`` x every dataset, schema and column-lineage limit."""
    from lineage_intake import limits

    datasets = int(limits.MAX_DATASETS * scale)
    fields = int(limits.MAX_SCHEMA_FIELDS * scale)
    per_field = limits.MAX_COLUMN_EDGES // limits.MAX_SCHEMA_FIELDS  # 4: 20,000 edges at 5,000 fields
    schema = {"fields": [{"name": f"c{i}", "type": "string"} for i in range(fields)]}
    column_lineage = {
        "fields": {
            f"c{i}": {
                "inputFields": [
                    {"namespace": "bench", "name": f"in{(i * per_field + k) % datasets}", "field": f"c{i}"}
                    for k in range(per_field)
                ]
            }
            for i in range(fields)
        }
    }
    outputs: list[dict[str, Any]] = [{"namespace": "bench", "name": f"out{i}"} for i in range(datasets)]
    outputs[0]["facets"] = {"schema": schema, "columnLineage": column_lineage}
    base = {
        "producer": "https://example.com/bench",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": ""},
        "job": {"namespace": "bench", "name": ""},
        "inputs": [{"namespace": "bench", "name": f"in{i}"} for i in range(datasets)],
        "outputs": outputs,
    }
    start = base | {"eventType": "START", "eventTime": "2024-06-01T10:00:00Z"}
    complete = base | {"eventType": "COMPLETE", "eventTime": "2024-06-01T10:05:00Z"}
    return [json.loads(json.dumps(start)), json.loads(json.dumps(complete))]


def ordinary_run() -> list[dict[str, Any]]:
    events = [e for e in json.loads(SEED.read_text()) if e["job"]["name"] == SEED_JOB]
    return sorted(events, key=lambda e: e["eventTime"])


class Harness:
    """The template's tables on moto, ingest to store events and the merge to merge them."""

    def __init__(self) -> None:
        import boto3
        from lineage_intake.config import IngestSettings
        from lineage_intake.service.ingest import IngestService
        from lineage_intake.service.merge import MergeService
        from lineage_intake.store.events import EventsStore
        from lineage_intake.store.lineage import LineageStore
        from lineage_intake_tools.local.template import Stack

        stack = Stack.from_template(prefix="bench")
        session = boto3.Session(region_name="us-east-1")
        self.ddb = session.client("dynamodb")
        for logical in ("EventsTable", "LineageTable"):
            self.ddb.create_table(**stack.table_definition(logical))
        env = stack.function("MergeFunction").environment
        session.client("s3").create_bucket(Bucket=env["BODY_BUCKET"])
        self.events_table = env["EVENTS_TABLE"]
        events = EventsStore(self.ddb, env["EVENTS_TABLE"], env["BODY_BUCKET"], lambda: session.client("s3"))
        settings = IngestSettings.from_env({"EVENTS_TABLE": env["EVENTS_TABLE"], "BODY_BUCKET": env["BODY_BUCKET"]})
        self.ingest = IngestService(events, settings, lambda _o: None)

        class NoGrace:
            def send(self, *_args: Any) -> None:
                pass

        self.merge = MergeService(events, LineageStore(self.ddb, env["LINEAGE_TABLE"]), lambda _o: None, NoGrace())
        self.runs = 0
        self.requests = 0
        self.ddb.meta.events.register("before-call.dynamodb", self._count)

    def _count(self, **_kwargs: Any) -> None:
        self.requests += 1

    def merge_run(self, events: list[dict[str, Any]], traced: bool) -> tuple[float, float, int, int, Any]:
        """Store a fresh copy of the run (its own job), merge each event; the COMPLETE's wall and CPU seconds,
        peak bytes, requests and outcome."""
        from lineage_intake import keys
        from lineage_intake.principal import Principal
        from lineage_intake.service.merge import Batch
        from lineage_intake.store.dynamo import from_dynamodb

        self.runs += 1
        run_id = f"00000000-0000-4000-8000-{self.runs:012d}"
        seconds, cpu, peak, requests, outcome = 0.0, 0.0, 0, 0, None
        for template in events:
            # A namespace of its own: every dataset, edge and column edge is new (nothing left by an earlier run)
            event = json.loads(json.dumps(template).replace('"namespace": "bench"', f'"namespace": "bench{self.runs}"'))
            event["run"]["runId"] = run_id
            event["job"]["name"] = f"bench-job-{self.runs}"
            namespace = event["job"]["namespace"]
            stored = self.ingest.store_event(event, Principal("tok_bench", frozenset({namespace})))
            assert stored.status == "accepted", stored
            pk = keys.run_pk(namespace, event["job"]["name"], run_id)
            sk = f"{stored.event_time}#{stored.event_id}"
            image = from_dynamodb(
                self.ddb.get_item(TableName=self.events_table, Key={"pk": {"S": pk}, "sk": {"S": sk}})["Item"]
            )
            if traced:
                tracemalloc.start()
            before = self.requests
            started, cpu_started = time.perf_counter(), time.process_time()
            outcome = self.merge.handle(image, "INSERT", Batch())
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            requests = self.requests - before
            if traced:
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
        assert outcome is not None and outcome.status == "merged", outcome
        return seconds, cpu, peak, requests, outcome


def measure(harness: Harness, build: Callable[[], list[dict[str, Any]]]) -> tuple[float, float, int, int, Any]:
    events = build()
    best = min((harness.merge_run(events, traced=False)[:2] for _ in range(REPEAT)), key=lambda r: r[0])
    _, _, peak, requests, outcome = harness.merge_run(events, traced=True)
    return best[0], best[1], peak, requests, outcome


def run() -> list[str]:
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_SESSION_TOKEN="testing")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from lineage_intake_tools.local.moto_lock import serialise_dynamodb
    from lineage_intake_tools.local.template import Stack
    from moto import mock_aws

    serialise_dynamodb()
    props = Stack.from_template(prefix="bench").resources["MergeFunction"]["Properties"]
    timeout, memory_mb = float(props["Timeout"]), int(props["MemorySize"])
    with mock_aws():
        harness = Harness()
        anchor = measure(harness, ordinary_run)
        scaled = {scale: measure(harness, lambda scale=scale: limit_run(scale)) for scale in SCALES}
    mb = 1024 * 1024
    lines = [
        f"  merge of one run's COMPLETE (first run of its job), tables on moto in process; best of {REPEAT} for "
        "time, tracemalloc peak in a separate merge:"
    ]
    rows = [("ordinary run (anchor): 4 inputs, 1 output", anchor)]
    rows += [
        (
            f"{scale:g} x the limits: {int(1000 * scale):,} inputs and outputs, {int(5000 * scale):,} fields, "
            f"{int(20000 * scale):,} column edges",
            scaled[scale],
        )
        for scale in SCALES
    ]
    for label, (seconds, cpu, peak, requests, outcome) in rows:
        lines.append(
            f"    {label}: {seconds:7.2f} s ({cpu:.2f} CPU s), peak {peak / mb:6.1f} MiB, {requests:,} DynamoDB "
            f"requests, {outcome.written:,} records written"
        )
    top = scaled[SCALES[-1]]
    lines.append(
        f"  {SCALES[-1]:g} x the limits / ordinary run: time {top[0] / anchor[0]:,.0f}x, "
        f"CPU {top[1] / max(1e-6, anchor[1]):,.0f}x, memory {top[2] / max(1, anchor[2]):,.0f}x"
    )
    for low, high in itertools.pairwise(SCALES):
        a, b = scaled[low], scaled[high]
        lines.append(
            f"  growth {low:g} -> {high:g} ({high / low:g}x the work): time {b[0] / a[0]:.1f}x, "
            f"CPU {b[1] / max(1e-6, a[1]):.1f}x, memory {b[2] / max(1, a[2]):.1f}x, requests {b[3] / max(1, a[3]):.1f}x"
        )
    share = top[0] / timeout
    inside = SCALES[-1] == 1.0 and share <= TIMEOUT_SHARE and top[2] < memory_mb * mb / 2
    verdict = "well inside" if inside else ("NOT well inside" if SCALES[-1] == 1.0 else "not measured at the limits")
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "n/a"
    lines.append(
        f"  CPU at {SCALES[-1]:g} x the limits: {top[1]:.1f} s, {top[1] / timeout:.0%} of the timeout (CPU time does "
        f"not depend on the machine's other processes; load average {load} on {os.cpu_count()} cores)"
    )
    lines.append(
        f"  bound: the function's Timeout {timeout:.0f} s and MemorySize {memory_mb} MiB: {share:.0%} of the timeout "
        f"at {SCALES[-1]:g} x the limits: {verdict} (target at the limits: at most {TIMEOUT_SHARE:.0%} of it, "
        "half the memory; moto's per-request work is included)"
    )
    return lines


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
