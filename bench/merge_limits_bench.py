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

**Round trips** (the top scale only): moto answers in process, so its CPU hides what DynamoDB costs a merge,
a network round trip per request. A ``before-call`` botocore hook sleeps ``LATENCY_MS`` (5 ms) in the calling
thread before every DynamoDB request, outside moto's lock, and the run is merged twice more: its dataset writes
one after the other (``write_threads=1``, as before issue 13's parallel writes) and side by side (the store's
default), as a ratio beside the timeout, with the dataset-write phase alone (``_write_datasets``) timed too.
5 ms: DynamoDB answers single-item writes in single-digit milliseconds within a region, and a Lambda function
adds its HTTPS hop; a lower figure favours the sequential path. Both include moto's CPU, which does not overlap
(one lock, one GIL). The write and read units of both are metered (``meter.Meter``, on a second client without
the sleep, the meter's own reads not counted) and must be equal: the pool changes when writes happen, not what.

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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meter import Meter, Usage

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT / "tools"), str(ROOT)]

SEED = ROOT / "tests" / "fixtures" / "corpus" / "marquez" / "docker" / "metadata.json"
SEED_JOB = "etl_orders_7_days"
REPEAT = int(os.environ.get("MERGE_LIMITS_REPEAT", "1"))
#: Fractions of the limits to merge: the last one is the figure; ``MERGE_LIMITS_SCALES=0.05,0.1`` for a quick run.
SCALES = tuple(float(x) for x in os.environ.get("MERGE_LIMITS_SCALES", "0.1,0.2,1.0").split(","))
#: A run at the limits must merge in at most this share of the function's timeout ("well inside").
TIMEOUT_SHARE = 0.25
#: Injected per DynamoDB request in the round-trip figure (module docstring: why 5 ms); 0 leaves that figure out.
LATENCY_MS = float(os.environ.get("MERGE_LIMITS_LATENCY_MS", "5"))
_runs = itertools.count(1)  # every merged run is the first of its own job and namespace, across harnesses


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
    """The template's tables on moto, ingest to store events and the merge to merge them, on a client of its own
    (``create``: make the tables; a second harness shares them). ``latency``: seconds slept before each request;
    ``meter``: meters the client's calls."""

    def __init__(self, create: bool = True, meter: Meter | None = None) -> None:
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
        env = stack.function("MergeFunction").environment
        if create:
            for logical in ("EventsTable", "LineageTable"):
                self.ddb.create_table(**stack.table_definition(logical))
            session.client("s3").create_bucket(Bucket=env["BODY_BUCKET"])
        self.events_table = env["EVENTS_TABLE"]
        events = EventsStore(self.ddb, env["EVENTS_TABLE"], env["BODY_BUCKET"], lambda: session.client("s3"))
        settings = IngestSettings.from_env({"EVENTS_TABLE": env["EVENTS_TABLE"], "BODY_BUCKET": env["BODY_BUCKET"]})
        self.ingest = IngestService(events, settings, lambda _o: None)

        class NoGrace:
            def send(self, *_args: Any) -> None:
                pass

        self.lineage = LineageStore(self.ddb, env["LINEAGE_TABLE"])
        self.merge = MergeService(events, self.lineage, lambda _o: None, NoGrace())
        self.requests = 0
        self.latency = 0.0
        self.meter = meter.attach(self.ddb) if meter is not None else None
        self.usage: Usage | None = None
        self.dataset_seconds = self.dataset_cpu = 0.0
        self.ddb.meta.events.register("before-call.dynamodb", self._count)
        write_datasets = self.lineage._write_datasets

        def timed_write_datasets(*args: Any) -> None:
            started, cpu = time.perf_counter(), time.process_time()
            try:
                write_datasets(*args)
            finally:
                self.dataset_seconds += time.perf_counter() - started
                self.dataset_cpu += time.process_time() - cpu

        self.lineage._write_datasets = timed_write_datasets  # type: ignore[method-assign]

    def _count(self, **_kwargs: Any) -> None:
        self.requests += 1  # under the GIL; the pool's threads call this too
        if self.latency:
            time.sleep(self.latency)

    def merge_run(self, events: list[dict[str, Any]], traced: bool) -> tuple[float, float, int, int, Any]:
        """Store a fresh copy of the run (its own job), merge each event; the COMPLETE's wall and CPU seconds,
        peak bytes, requests and outcome."""
        from lineage_intake import keys
        from lineage_intake.principal import Principal
        from lineage_intake.service.merge import Batch
        from lineage_intake.store.dynamo import from_dynamodb

        number = next(_runs)
        run_id = f"00000000-0000-4000-8000-{number:012d}"
        seconds, cpu, peak, requests, outcome = 0.0, 0.0, 0, 0, None
        for template in events:
            # A namespace of its own: every dataset, edge and column edge is new (nothing left by an earlier run)
            event = json.loads(
                json.dumps(template).replace('"namespace": "bench"', f'"namespace": "bench{number:04d}"')
            )
            event["run"]["runId"] = run_id
            event["job"]["name"] = f"bench-job-{number:04d}"  # equal lengths: equal item sizes
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
            before, metered = self.requests, self.meter.snapshot() if self.meter else None
            self.dataset_seconds = self.dataset_cpu = 0.0
            started, cpu_started = time.perf_counter(), time.process_time()
            outcome = self.merge.handle(image, "INSERT", Batch())
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            requests = self.requests - before
            if self.meter is not None and metered is not None:
                self.usage = self.meter.delta(metered)
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


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "n/a"


def round_trips(
    harness: Harness, metered: Harness, events: list[dict[str, Any]]
) -> dict[int, tuple[float, float, Any]]:
    """The run merged with ``LATENCY_MS`` slept before each request, per ``write_threads`` (1, then the store's
    default): (merge wall seconds, dataset-write seconds, metered usage of the same merge without the sleep)."""
    out: dict[int, tuple[float, float, Any]] = {}
    default = harness.lineage.write_threads
    for threads in (1, default):
        harness.lineage.write_threads = metered.lineage.write_threads = threads
        harness.latency = LATENCY_MS / 1000
        try:
            seconds = harness.merge_run(events, traced=False)[0]
        finally:
            harness.latency = 0.0
        phase = (harness.dataset_seconds, harness.dataset_cpu)
        metered.merge_run(events, traced=False)
        out[threads] = (seconds, phase, metered.usage)
    harness.lineage.write_threads = metered.lineage.write_threads = default
    return out


def run() -> list[str]:
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_SESSION_TOKEN="testing")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from lineage_intake_tools.local.moto_lock import serialise_dynamodb
    from lineage_intake_tools.local.template import Stack
    from meter import Meter
    from moto import mock_aws

    serialise_dynamodb()
    props = Stack.from_template(prefix="bench").resources["MergeFunction"]["Properties"]
    timeout, memory_mb = float(props["Timeout"]), int(props["MemorySize"])
    with mock_aws():
        harness = Harness()
        anchor = measure(harness, ordinary_run)
        scaled = {scale: measure(harness, lambda scale=scale: limit_run(scale)) for scale in SCALES}
        trips = round_trips(harness, Harness(create=False, meter=Meter()), limit_run(SCALES[-1])) if LATENCY_MS else {}
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
    load = loadavg()
    lines.append(
        f"  CPU at {SCALES[-1]:g} x the limits: {top[1]:.1f} s, {top[1] / timeout:.0%} of the timeout (CPU time does "
        f"not depend on the machine's other processes; load average {load} on {os.cpu_count()} cores)"
    )
    lines.append(
        f"  bound: the function's Timeout {timeout:.0f} s and MemorySize {memory_mb} MiB: {share:.0%} of the timeout "
        f"at {SCALES[-1]:g} x the limits: {verdict} (target at the limits: at most {TIMEOUT_SHARE:.0%} of it, "
        "half the memory; moto's per-request work is included)"
    )
    if trips:
        (_, (seq, seq_phase, seq_units)), (threads, (par, par_phase, par_units)) = sorted(trips.items())
        lines.append(
            f"  round trips at {SCALES[-1]:g} x the limits, {LATENCY_MS:g} ms slept before each DynamoDB request "
            f"(moto's CPU included, it does not overlap): dataset writes one after the other {seq:.1f} s "
            f"({seq / timeout:.0%} of the {timeout:.0f} s timeout), on {threads} threads {par:.1f} s "
            f"({par / timeout:.0%}): {seq / par:.2f}x; the dataset-write phase alone {seq_phase[0]:.1f} s -> "
            f"{par_phase[0]:.1f} s ({seq_phase[0] / max(1e-6, par_phase[0]):.1f}x; {seq_phase[1]:.1f} and "
            f"{par_phase[1]:.1f} CPU s: moto's CPU bounds it); load average {loadavg()}: on a loaded machine 8 "
            "threads also get more of the CPU than 1, so the ratio is then an upper bound"
        )
        same = (seq_units.total_wru, seq_units.total_rru, +seq_units.requests) == (
            par_units.total_wru,
            par_units.total_rru,
            +par_units.requests,
        )
        lines.append(
            f"  metered, the same merge without the sleep: one after the other {seq_units.total_wru:,.0f} WRU, "
            f"{seq_units.total_rru:,.1f} RRU, {sum(seq_units.requests.values()):,} requests; on {threads} threads "
            f"{par_units.total_wru:,.0f} WRU, {par_units.total_rru:,.1f} RRU, {sum(par_units.requests.values()):,} "
            f"requests: {'the same' if same else 'DIFFERENT'}"
        )
    return lines


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
