"""Merge cost benchmark (issue 9): DynamoDB units per merge, metered, beside today's code metered the same way.

Each figure comes from ``meter.Meter`` hooked on the DynamoDB client that the merge uses (units from item sizes
and the template's GSI projections, as on-demand bills them). "today" is the merge of the commit this work started
from (``BASELINE``): its layer and template are checked out of git into a temporary folder and run in a
subprocess of this same script (``--worker``), with the same events and the same meter. Events are stored with
the layer's own ``IngestService`` (not metered: ingest is metered by the ingest bench) and each one is delivered
to ``MergeService.handle`` as a stream batch of its own, as the stream delivers a run's events when they come
seconds apart. Scenarios: a job's first run (START, COMPLETE; 4 inputs, 1 output), a steady-state run (the
same job again), the same with data-quality assertions on one input (issue 10), a 10-event run (START, 8
RUNNING, COMPLETE), and a streaming run of 1,000 and 10,000 RUNNING events (total read units; the ratio must
be at most 12: constant work per event gives 10). The streaming runs go through ``memory_dynamodb.MemoryDynamoDB``
(no HTTP; same meter, checked against boto3 on moto in each run): docs/merge.md "Streaming runs".

Run: ``python bench/merge_cost_bench.py`` (or ``make bench``). Needs git (for the baseline).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
#: The main commit before merge v2 (issue 9): "today's" merge.
BASELINE = "ea018cb"
#: The main commit before the first cost round (log lines, gsi3 keys): "before" of the streaming writes.
COST_BASELINE = "93edc1f"
#: The main commit before the second cost round (zlib-d2 items, trace ids, the stream model): "before" of the
#: cost lines.
COST3_BASELINE = "68907c7"
#: Assumed wall time of one DynamoDB request from Lambda in the same region (billed while the merge waits).
DYNAMODB_ROUND_TRIP_MS = 6.0
#: Events of the streaming run merged both through boto3 on moto and through ``MemoryDynamoDB`` (same units).
CROSS_CHECK_EVENTS = 100
#: Events of the streaming run that measures "before" streaming writes per event (per-event cost is flat).
COST_STREAM = 200
SEED = ROOT / "tests" / "fixtures" / "corpus" / "marquez" / "docker" / "metadata.json"
FLINK = ROOT / "tests" / "fixtures" / "corpus" / "openlineage" / "templates" / "flink" / "flink1"
DBT_TESTS = ROOT / "tests" / "fixtures" / "corpus" / "openlineage" / "templates" / "dbt" / "test" / "result.json"
DQ_RUN = "00000000-0000-4000-8000-000000000004"
JOB = "etl_orders_7_days"
#: ``MERGE_COST_STREAM_SIZES=100,1000`` for a quicker run (the 10,000-event run takes about a CPU-minute).
STREAM_SIZES = tuple(int(n) for n in os.environ.get("MERGE_COST_STREAM_SIZES", "1000,10000").split(","))
TARGET_WRU, TARGET_RRU, TARGET_STREAM_RATIO = 2.0, 2.0, 12.0


# ---------------------------------------------------------------------------------------------- worker
def _seed_pair() -> list[dict[str, Any]]:
    events = [e for e in json.loads(SEED.read_text()) if e["job"]["name"] == JOB]
    return sorted(events, key=lambda e: e["eventTime"])


def _as_run(events: list[dict[str, Any]], run_id: str, base: float) -> list[dict[str, Any]]:
    out = []
    for i, event in enumerate(events):
        event = copy.deepcopy(event)
        event["run"]["runId"] = run_id
        event["eventTime"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base + 10 * i)) + ".000Z"
        out.append(event)
    return out


def _with_quality(pair: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steady-state run whose COMPLETE reports dbt's four assertions on its first input, as dbt test does
    (the facet of OpenLineage's dbt test template): the extra write of a run that carries data quality."""
    start, complete = copy.deepcopy(pair)
    tests = [e for e in json.loads(DBT_TESTS.read_text()) if e["eventType"] == "COMPLETE"]
    facet = tests[0]["inputs"][0]["inputFacets"]["dataQualityAssertions"]
    first = start["inputs"][0]
    complete["inputs"] = [{"namespace": first["namespace"], "name": first["name"], "inputFacets": {
        "dataQualityAssertions": facet}}]  # fmt: skip
    return [start, complete]


def _flink(count: int, run_id: str) -> list[dict[str, Any]]:
    start = json.loads((FLINK / "expected_kafka.json").read_text())
    running = json.loads((FLINK / "expected_kafka_checkpoints.json").read_text())
    events = [start] + [copy.deepcopy(running) for _ in range(count - 1)]
    for i, event in enumerate(events):
        event["run"]["runId"] = run_id
        event["eventTime"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1_700_000_000 + 10 * i)) + ".000Z"
        if i:
            event["run"]["facets"]["checkpoints"] = {"completed": i, "failed": 0, "in-progress": 1, "total": i}
        event["producer"] = "https://github.com/OpenLineage/OpenLineage/tree/1.0.0/integration/flink"
        for key in ("schemaURL",):
            event.setdefault(key, "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent")
    return events


def _run_partition(client: Any, run_key: str) -> list[tuple[str, list[str], int]]:
    """The Lineage items of one run (run item, checkpoint): sort key, attribute names and size, to compare two
    runs of the same events under other run ids (the values that hold the id differ, not their sizes; the
    checkpoint's state is measured uncompressed, as ids of the same length compress a byte or two apart)."""
    import zlib

    from meter import item_size

    answer = client.query(
        TableName="bench-lineage", KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": run_key}}
    )
    out = []
    for item in answer["Items"]:
        plain = {k: {"B": zlib.decompress(v["B"])} if "B" in v else v for k, v in item.items()}
        out.append((item["sk"]["S"], sorted(item), item_size(plain)))
    return out


def _handler_module(name: str, path: Path, env: dict[str, str]) -> Any:
    """A function's app.py imported under its own name (each function has an ``app``), with its environment."""
    import importlib.util

    os.environ.update(env)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def worker(
    layer: Path,
    template: Path,
    stream_sizes: list[int],
    cost: bool = False,
    memory: bool = False,
    cross_check: bool = False,
) -> dict[str, Any]:
    """Merge the scenarios with the layer at ``layer`` and the tables of ``template``; units per scenario."""
    sys.path[:0] = [str(layer), str(HERE), str(ROOT / "tools")]
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    import inspect

    import boto3
    from cost import LogBytes
    from lineage_intake import keys
    from lineage_intake.config import IngestSettings
    from lineage_intake.principal import Principal
    from lineage_intake.service import merge as merge_service
    from lineage_intake.service.ingest import IngestService
    from lineage_intake.store.dynamo import from_dynamodb
    from lineage_intake.store.events import EventsStore
    from lineage_intake.store.lineage import LineageStore
    from lineage_intake_tools.local.template import load_template
    from memory_dynamodb import MemoryDynamoDB
    from meter import Meter
    from moto import mock_aws

    resources = load_template(template)["Resources"]
    out: dict[str, Any] = {}
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        ddb = session.client("dynamodb")
        for logical, name in (("EventsTable", "bench-events"), ("LineageTable", "bench-lineage")):
            props = resources[logical]["Properties"]
            definition = {
                k: props[k] for k in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes") if k in props
            }
            ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **definition)
        session.client("s3").create_bucket(Bucket="bench-bodies")
        events = EventsStore(ddb, "bench-events", "bench-bodies", lambda: session.client("s3"))
        settings = IngestSettings.from_env({"EVENTS_TABLE": "bench-events", "BODY_BUCKET": "bench-bodies"})
        ingest = IngestService(events, settings, lambda _o: None)
        lineage = LineageStore(ddb, "bench-lineage")
        meter = Meter().attach(ddb)
        # CPU spent inside DynamoDB calls is moto's and the meter's, not the merge's: it is timed apart, and the
        # merge's billed time is modelled from its own CPU plus a round trip per request (cost_lines).
        in_calls = {"cpu": 0.0, "depth": 0}
        make_call = ddb._make_api_call

        def timed_call_of(send: Any, operation: str, params: dict[str, Any]) -> Any:
            # the meter's own reads run inside a metered call: only the outermost call is timed
            began, in_calls["depth"] = time.process_time(), in_calls["depth"] + 1
            try:
                return send(operation, params)
            finally:
                in_calls["depth"] -= 1
                if not in_calls["depth"]:
                    in_calls["cpu"] += time.process_time() - began

        def timed_call(operation: str, params: dict[str, Any]) -> Any:
            return timed_call_of(make_call, operation, params)

        ddb._make_api_call = timed_call

        class NoGrace:
            def send(self, *_args: Any) -> None:
                pass

        logs: dict[str, Any] = {}
        merge_report: Any = lambda _o: None  # noqa: E731
        if cost:
            # The handlers' own report functions (of the template's own functions folder), so the log lines are
            # the deployed ones, with the keys Powertools' inject_lambda_context adds (what the function's
            # formatter keeps of them), the API request id (correlation_id) of ingest and the X-Ray trace id of
            # an active trace; EMF metrics are flushed once per invocation, as in Lambda.
            from lineage_intake_tools.local.template import ROOT as TOOLS_ROOT
            from lineage_intake_tools.local.template import Stack

            # unsampled, as most requests are under load (X-Ray's default rule: 1 a second and 5% of the rest);
            # cost_lines adds the trace ids of the sampled share, measured with the functions' formatter
            trace = "Root=1-67890abc-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=0"
            os.environ["_X_AMZN_TRACE_ID"] = trace
            stack = Stack(template=load_template(template), prefix="lineage-intake", parameters={})
            context = {
                "cold_start": False,
                "function_memory_size": "1024",
                "function_arn": "arn:aws:lambda:us-east-1:123456789012:function:lineage-intake-merge",
                "function_request_id": "0f9e8d7c-6b5a-4f3e-9d2c-1b0a9f8e7d6c",
            }
            for logical, short in (("IngestFunction", "ingest"), ("MergeFunction", "merge")):
                spec = stack.function(logical)
                code_dir = template.parent / Path(spec.code_dir).relative_to(TOOLS_ROOT)
                logs[short] = _handler_module(f"bench_{short}_app", code_dir / "app.py", spec.environment)
                logs[short].logger.append_keys(**{**context, "function_name": f"lineage-intake-{short}"})
            logs["ingest"].logger.set_correlation_id("JRj0lhDboAMEVtA=")  # an HTTP API request id
            ingest = IngestService(events, settings, logs["ingest"].report)
            merge_report = logs["merge"].report

        def merge_service_of(store: Any, lineage_store: Any) -> Any:
            args: list[Any] = [store, lineage_store, merge_report]
            if "grace" in inspect.signature(merge_service.MergeService).parameters:
                args.append(NoGrace())
            return merge_service.MergeService(*args)

        service = merge_service_of(events, lineage)

        def in_memory() -> MemoryDynamoDB:
            """A client without HTTP (bench/memory_dynamodb.py): the Events table in memory, the Lineage table
            moto's own (the same items as ``ddb`` sees), every call metered; its time is timed apart too."""
            client = MemoryDynamoDB(meter, partitions=["bench-events"])
            send = client._call

            def timed(operation: str, params: dict[str, Any]) -> Any:
                return timed_call_of(send, operation, params)

            client._call = timed  # type: ignore[method-assign]
            return client

        def deliver(run: list[dict[str, Any]], memory: MemoryDynamoDB | None = None) -> dict[str, float]:
            """Each event stored by ingest, then merged as a stream batch of its own; ``memory``: both tables
            through ``MemoryDynamoDB`` instead of boto3 on moto (same meter, same table names)."""
            client: Any = ddb if memory is None else memory
            if memory is None:
                ingester, merger = ingest, service
            else:
                store = EventsStore(memory, "bench-events", "bench-bodies", lambda: session.client("s3"))
                ingester = IngestService(store, settings, ingest.report)
                merger = merge_service_of(store, LineageStore(memory, "bench-lineage"))
            used = {"wru": 0.0, "rru": 0.0, "merges": 0, "cpu_ms": 0.0, "gsi3_wru": 0.0, "max_rru": 0.0}
            used |= {"requests": 0.0, "bench_cpu_ms": 0.0}
            used |= {"ingest_wru": 0.0, "log_line_bytes": 0.0, "emf_bytes": 0.0}
            began = time.process_time()
            for event in run:
                namespace = event["job"]["namespace"]
                before = meter.snapshot()
                with LogBytes() as lines:
                    stored = ingester.store_event(event, Principal("tok_bench", frozenset({namespace})))
                used["log_line_bytes"] += lines.bytes
                if logs:
                    # one EMF flush per invocation of each function; Powertools' Metrics share one metric set,
                    # so ingest's is flushed before the merge adds its own
                    with LogBytes() as emf:
                        logs["ingest"].metrics.flush_metrics()
                    used["emf_ingest_bytes"] = used.get("emf_ingest_bytes", 0.0) + emf.bytes
                    used["emf_bytes"] += emf.bytes
                used["ingest_wru"] += meter.delta(before).total_wru
                pk = keys.run_pk(namespace, event["job"]["name"], event["run"]["runId"].lower())
                sk = f"{stored.event_time}#{stored.event_id}"
                with meter.disabled():
                    item = client.get_item(TableName="bench-events", Key={"pk": {"S": pk}, "sk": {"S": sk}})["Item"]
                before = meter.snapshot()
                cpu, calls = time.process_time(), in_calls["cpu"]
                with LogBytes() as lines:
                    merger.handle(from_dynamodb(item), "INSERT", merge_service.Batch())
                used["cpu_ms"] += (time.process_time() - cpu - (in_calls["cpu"] - calls)) * 1000
                used["log_line_bytes"] += lines.bytes
                if logs:
                    with LogBytes() as emf_merge:
                        logs["merge"].metrics.flush_metrics()
                    used["emf_merge_bytes"] = used.get("emf_merge_bytes", 0.0) + emf_merge.bytes
                    used["emf_bytes"] += emf_merge.bytes
                delta = meter.delta(before)
                used["wru"] += delta.wru.get("bench-lineage", 0.0) + sum(
                    v for k, v in delta.wru.items() if k.startswith("bench-lineage/")
                )
                used["rru"] += delta.total_rru
                used["requests"] += sum(delta.requests.values())
                used["max_rru"] = max(used["max_rru"], delta.total_rru)
                used["gsi3_wru"] += delta.wru.get("bench-lineage/gsi3", 0.0)
                used["merges"] += 1
            # the whole bench's CPU for the run: ingest, merge, the tables and the meter
            used["bench_cpu_ms"] = (time.process_time() - began) * 1000
            return used

        pair = _seed_pair()
        out["first run"] = deliver(_as_run(pair, "00000000-0000-4000-8000-000000000001", 1_700_000_000))
        out["steady-state run"] = deliver(_as_run(pair, "00000000-0000-4000-8000-000000000002", 1_700_001_000))
        out["run with data quality"] = deliver(_as_run(_with_quality(pair), DQ_RUN, 1_700_001_500))
        ten = [pair[0]] + [copy.deepcopy(pair[0]) | {"eventType": "RUNNING"} for _ in range(8)] + [pair[1]]
        out["10-event run"] = deliver(_as_run(ten, "00000000-0000-4000-8000-000000000003", 1_700_002_000))
        streaming = in_memory() if memory else None
        for size in stream_sizes:
            out[f"streaming {size}"] = deliver(_flink(size, f"00000000-0000-4000-8000-{size:012d}"), streaming)
        if cross_check and stream_sizes:
            # the same run through boto3 on moto and through the in-memory client: same units, same items
            size = min(stream_sizes[0], CROSS_CHECK_EVENTS)
            moto_id, memory_id = (f"00000000-0000-4000-800{n}-{size:012d}" for n in (1, 2))
            out["cross-check moto"] = deliver(_flink(size, moto_id))
            out["cross-check memory"] = deliver(_flink(size, memory_id), in_memory())
            with meter.disabled():
                moto_items, memory_items = (_run_partition(ddb, keys.run_key(i)) for i in (moto_id, memory_id))
            out["cross-check items"] = {"items": len(moto_items), "same": moto_items == memory_items}
    return out


def _run_worker(layer: Path, template: Path, stream_sizes: list[int], **flags: bool) -> dict[str, Any]:
    """``worker`` in a subprocess (its own imports of ``layer``); ``flags``: the worker's keyword arguments."""
    command = [sys.executable, __file__, "--worker", str(layer), str(template), ",".join(map(str, stream_sizes))]
    command += [f"--{name}" for name, on in flags.items() if on]
    answer = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if answer.returncode != 0:
        raise RuntimeError(f"merge cost worker failed: {answer.stderr[-2000:]}")
    return dict(json.loads(answer.stdout.strip().splitlines()[-1]))


def _baseline(tmp: Path, commit: str = BASELINE) -> tuple[Path, Path]:
    """The layer, functions and template of ``commit``, from git, into ``tmp``."""
    archive = subprocess.run(
        ["git", "archive", commit, "layers/shared", "functions", "template.yaml"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    return tmp / "layers" / "shared", tmp / "template.yaml"


# ---------------------------------------------------------------------------------------------- report
def run() -> list[str]:
    now = _run_worker(
        ROOT / "layers" / "shared", ROOT / "template.yaml", list(STREAM_SIZES), cost=True, memory=True, cross_check=True
    )
    with tempfile.TemporaryDirectory() as folder:
        layer, template = _baseline(Path(folder))
        # today's merge re-reads the whole run at every event: 10,000 events would take hours; 1,000 is shown
        today = _run_worker(layer, template, [STREAM_SIZES[0]], memory=True)
    with tempfile.TemporaryDirectory() as folder:
        # the cost levers of issue 9's last round (log lines, gsi3 keys, ingest items), before and after
        layer, template = _baseline(Path(folder), COST_BASELINE)
        before = _run_worker(layer, template, [COST_STREAM], cost=True, memory=True)
    with tempfile.TemporaryDirectory() as folder:
        layer, template = _baseline(Path(folder), COST3_BASELINE)
        before3 = _run_worker(layer, template, [], cost=True)
        before_platform = cost_module().platform_log_bytes_per_invocation(cost_module().load_template_at(template))
    lines = [f"  merge DynamoDB units per run, metered (today = commit {BASELINE}, same events, same meter):"]
    for name in ("first run", "steady-state run", "10-event run"):
        ours, old = now[name], today[name]
        lines.append(
            f"    {name:<17} {ours['wru']:5.1f} WRU ({ours['wru'] - ours['gsi3_wru']:.1f} without the time index "
            f"gsi3) {ours['rru']:5.1f} RRU over {ours['merges']} merges (at most {ours['max_rru']:.1f} RRU in one)"
            f"   today: {old['wru']:5.1f} WRU {old['rru']:5.1f} RRU (at most {old.get('max_rru', 0):.1f} in one)"
        )
    steady = now["steady-state run"]
    quality, old_quality = now["run with data quality"], today["run with data quality"]
    lines.append(
        f"    run with data quality (the steady-state run, its COMPLETE with dbt's 4 assertions on one input): "
        f"{quality['wru']:.1f} WRU = steady-state {steady['wru']:.1f} + {quality['wru'] - steady['wru']:.1f} for "
        f"the dataset's data-quality item; runs without data quality: +0 (steady-state above)   "
        f"today: {old_quality['wru']:.1f} WRU (kept nothing)"
    )
    without = steady["wru"] - steady["gsi3_wru"]
    lines.append(
        f"    steady-state target <= {TARGET_WRU:.0f} WRU per run without the time index (gsi3 adds "
        f"{steady['gsi3_wru']:.0f}, the read API's, by the lead's decision): "
        f"{'MET' if without <= TARGET_WRU else 'MISSED'} at {without:.1f}; <= {TARGET_RRU:.0f} RRU per merge: "
        f"{'MET' if steady['max_rru'] <= TARGET_RRU else 'MISSED'} at {steady['max_rru']:.1f}"
    )
    small, large = (now[f"streaming {n}"] for n in STREAM_SIZES)
    ratio = large["rru"] / small["rru"]
    old_small = today[f"streaming {STREAM_SIZES[0]}"]
    lines.append(
        f"    streaming, one event per batch: {STREAM_SIZES[0]:,} events {small['rru']:.0f} RRU {small['wru']:.0f} WRU"
        f" (today {old_small['rru']:.0f} RRU {old_small['wru']:.0f} WRU), {STREAM_SIZES[1]:,} events "
        f"{large['rru']:.0f} RRU {large['wru']:.0f} WRU (today: not run, it re-reads the run at every event); "
        f"ratio {ratio:.2f} (target <= {TARGET_STREAM_RATIO:.0f}; constant work per event: "
        f"{STREAM_SIZES[1] / STREAM_SIZES[0]:.0f}): {'MET' if ratio <= TARGET_STREAM_RATIO else 'MISSED'}"
    )
    lines.append(
        "    streaming CPU per event, merge outside DynamoDB calls: "
        + ", ".join(f"{n:,} events {now[f'streaming {n}']['cpu_ms'] / n:.2f} ms" for n in STREAM_SIZES)
        + f" (today, {STREAM_SIZES[0]:,}: {old_small['cpu_ms'] / STREAM_SIZES[0]:.2f} ms); the whole bench "
        "(ingest, merge, tables, meter): "
        + ", ".join(f"{now[f'streaming {n}']['bench_cpu_ms'] / n:.2f} ms" for n in STREAM_SIZES)
    )
    moto_run, memory_run, items = now["cross-check moto"], now["cross-check memory"], now["cross-check items"]
    same_units = all(moto_run[k] == memory_run[k] for k in ("rru", "wru", "ingest_wru", "requests"))
    lines.append(
        f"    (streaming runs go through bench/memory_dynamodb.py: Events table in memory, Lineage table moto's "
        f"without HTTP, billed by the same meter; cross-check, {moto_run['merges']:.0f} events, boto3 on moto / in "
        f"memory: {moto_run['rru']:.1f} / {memory_run['rru']:.1f} RRU, "
        f"{moto_run['wru'] + moto_run['ingest_wru']:.1f} / {memory_run['wru'] + memory_run['ingest_wru']:.1f} WRU, "
        f"{moto_run['requests']:.0f} / {memory_run['requests']:.0f} requests, run items "
        f"{'the same' if items['same'] else 'DIFFERENT'} ({items['items']}); "
        f"{'SAME UNITS' if same_units else 'UNITS DIFFER'}; bench CPU per event "
        f"{moto_run['bench_cpu_ms'] / moto_run['merges']:.1f} / "
        f"{memory_run['bench_cpu_ms'] / memory_run['merges']:.1f} ms)"
    )
    old_stream = before[f"streaming {COST_STREAM}"]
    lines.append(
        f"    streaming writes: {small['wru'] / small['merges']:.2f} WRU per event (run item, its gsi1 and gsi3 "
        f"entries, a checkpoint every third event; gsi3 {small['gsi3_wru'] / small['merges']:.2f}); before "
        f"(commit {COST_BASELINE}, gsi3 keyed by the last event's time, {COST_STREAM} events) "
        f"{old_stream['wru'] / old_stream['merges']:.2f} (gsi3 {old_stream['gsi3_wru'] / old_stream['merges']:.2f})"
        f"; today {old_small['wru'] / old_small['merges']:.1f}"
    )
    platform = cost_module().platform_log_bytes_per_invocation()
    return lines + cost_lines(steady, platform, before3["steady-state run"], before_platform)


def cost_module() -> Any:
    import cost

    return cost


def cost_lines(steady: dict[str, float], platform: int, before: dict[str, float], before_platform: int) -> list[str]:
    """Cost per million events of steady-state runs (2 events each), single POSTs and batches of 100, now and
    at ``COST3_BASELINE`` (same events, same meter, same traffic model, its own functions, layer and template),
    each with the floor of the layout beside it."""
    cost = cost_module()
    from ingest_bench import fixture_bodies, ingest_work, items_within_one_kb, median_per_event

    ingest_ms = median_per_event(ingest_work, fixture_bodies(), repeat=3) / 1000  # microseconds to ms
    memory, mapping, traffic = cost.memory_sizes(), cost.StreamMapping.of(), cost.Traffic()
    trace_bytes = _trace_id_bytes()
    within, total = items_within_one_kb()
    lines = ["  " + line for line in cost.price_lines()]
    for label, run in (("now", steady), (f"before (commit {COST3_BASELINE})", before)):
        events = run["merges"]
        lines.append(
            f"  per event, measured, {label}: ingest {run['ingest_wru'] / events:.2f} WRU; merge "
            f"{run['wru'] / events:.2f} WRU, {run['rru'] / events:.2f} RRU, {run['cpu_ms'] / events:.2f} ms CPU "
            f"outside DynamoDB calls, {run['requests'] / events:.2f} DynamoDB requests; log lines "
            f"{run['log_line_bytes'] / events:.0f} bytes (unsampled requests), metrics (EMF) "
            f"{run['emf_ingest_bytes'] / events:.0f} bytes per ingest invocation, "
            f"{run['emf_merge_bytes'] / events:.0f} per merge invocation"
        )
    lines.append(
        f"  ingest items <= 1 KB (1 WRU): {within} of {total} fixture events <= 20 KB (bench/ingest_bench.py); a "
        f"sampled request's line carries {trace_bytes} more bytes (its X-Ray trace id; before {COST3_BASELINE} "
        "every line did)"
    )
    lines.append(
        f"  assumed traffic, the same for both profiles: {traffic.describe()}. Merge invocations per event from the "
        f"stream mapping ({mapping.describe()}): {mapping.invocations_per_event(traffic):.3g} (each shard's "
        f"records of one window split over the parallel batches; at a low rate, "
        f"{mapping.invocations_per_event(cost.LOW_RATE):g} per event, one record per batch). Authorizer: cached "
        f"per token for AuthorizerCacheTtlSeconds = 60 s, 1 ms billed per invocation (Lambda's minimum). X-Ray "
        f"samples 1 request a second and 5% of the rest, per function"
    )
    lines.append(
        f"  ingest CPU {ingest_ms:.3f} ms per event (bench/ingest_bench.py, this code) plus its PutItem's round "
        f"trip; merge billed for its CPU outside DynamoDB calls plus {DYNAMODB_ROUND_TRIP_MS:g} ms per DynamoDB "
        "request (assumed in-region round trip; moto's time is not Lambda's)"
    )
    floor_wru = FLOOR_INGEST_WRU + FLOOR_RUN_WRU / EVENTS_PER_RUN
    for name, per_request, target in (("single POSTs", 1, 2.50), ("batches of 100", 100, 1.50)):
        now_profile = _profile(cost, memory, name, per_request, ingest_ms, steady, platform, traffic, trace_bytes)
        old_profile = _profile(cost, memory, name, per_request, ingest_ms, before, before_platform, traffic, 0)
        lines += ["  " + line for line in cost.report(now_profile, target_usd=target, floor_wru=floor_wru)]
        old_costs = cost.breakdown(old_profile)
        lines.append(
            f"    before (commit {COST3_BASELINE}, same meter, same traffic): ${sum(old_costs.values()):.4f} "
            f"(writes ${old_costs['DynamoDB writes']:.4f} at {old_profile.wru:.3g} WRU/event, logs "
            f"${old_costs['CloudWatch Logs']:.4f} at {cost.log_bytes_per_event(old_profile):.0f} bytes/event)"
        )
        low = _profile(cost, memory, name, per_request, ingest_ms, steady, platform, cost.LOW_RATE, trace_bytes)
        lines.append(
            f"    at a low rate ({cost.LOW_RATE.describe()}: one merge invocation per event, every request "
            f"authorized and traced): ${sum(cost.breakdown(low).values()):.4f}"
        )
    return lines


#: The layout's write floor (the lead's decision keeps gsi3): a 1 KB event item, and per run the run item, its
#: gsi1 entry and its gsi3 entry; the steady-state run has 2 events (START, COMPLETE).
FLOOR_INGEST_WRU, FLOOR_RUN_WRU, EVENTS_PER_RUN = 1.0, 3.0, 2


def _trace_id_bytes() -> int:
    """The bytes a sampled request adds to a function line (its X-Ray trace id), measured with the
    functions' own formatter on the same line with the trace header sampled and not."""
    import logging

    from lineage_intake.logs import compact_formatter

    sizes = []
    saved = os.environ.get("_X_AMZN_TRACE_ID")
    try:
        for sampled in ("1", "0"):
            os.environ["_X_AMZN_TRACE_ID"] = f"Root=1-67890abc-0123456789abcdef01234567;Sampled={sampled}"
            record = logging.LogRecord("merge", logging.INFO, "app.py", 1, "merge merged", None, None)
            sizes.append(len(compact_formatter().format(record).encode()))
    finally:
        if saved is None:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        else:
            os.environ["_X_AMZN_TRACE_ID"] = saved
    return sizes[0] - sizes[1]


def _sampled_share(requests_per_second: float) -> float:
    """X-Ray's default sampling rule: the first request each second, then 5% of the others."""
    if requests_per_second <= 1:
        return 1.0
    return (1 + 0.05 * (requests_per_second - 1)) / requests_per_second


def _profile(
    cost: Any,
    memory: dict[str, int],
    name: str,
    per_request: int,
    ingest_ms: float,
    run: dict[str, float],
    platform: int,
    traffic: Any,
    trace_bytes: int,
) -> Any:
    events = run["merges"]
    # billed time: the merge's own CPU plus a DynamoDB round trip per request (an assumption, printed)
    merge_ms = (run["cpu_ms"] + run["requests"] * DYNAMODB_ROUND_TRIP_MS) / events
    ingest_invocations = 1 / per_request
    merge_invocations = cost.StreamMapping.of().invocations_per_event(traffic)
    # each event has one ingest line and one merge line; a sampled invocation's lines carry the trace id
    rate = traffic.events_per_second
    traced = _sampled_share(rate * ingest_invocations) + _sampled_share(rate * merge_invocations)
    log_bytes = (
        run["log_line_bytes"] / events
        + traced * trace_bytes
        + run["emf_ingest_bytes"] / events * ingest_invocations
        + run["emf_merge_bytes"] / events * merge_invocations
    )
    authorizer = cost.authorizer_invocations_per_event(per_request, traffic)
    return cost.Profile(
        name=name,
        http_requests=1 / per_request,
        functions=[
            # one conditional PutItem per event, in turn (a batch's puts are sequential)
            cost.FunctionLoad(
                "IngestFunction", memory["IngestFunction"], ingest_invocations, ingest_ms + DYNAMODB_ROUND_TRIP_MS
            ),
            cost.FunctionLoad("AuthorizerFunction", memory["AuthorizerFunction"], authorizer, authorizer),
            cost.FunctionLoad("MergeFunction", memory["MergeFunction"], merge_invocations, merge_ms),
        ],
        wru=(run["ingest_wru"] + run["wru"]) / events,
        rru=run["rru"] / events,
        log_bytes=log_bytes,
        platform_log_bytes_per_invocation=platform,
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        sizes = [int(s) for s in sys.argv[4].split(",") if s]
        flags = {name: f"--{name}" in sys.argv for name in ("cost", "memory", "cross_check")}
        answer = worker(Path(sys.argv[2]), Path(sys.argv[3]), sizes, **flags)
        print(json.dumps(answer))
    else:
        for line in run():
            print(line)
