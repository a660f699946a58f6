"""Ingest benchmarks. Each figure is printed next to its anchor, both measured in this same run.

1. CPU per event: parse JSON, validate, and build the stored item (digest, key, compressed body), as the
   median over the valid fixture events. Anchor: JSON-Schema validation of the same events against the
   official 2-0-2 spec with the ``jsonschema`` package (the validator is built once, outside the timing).
2. DynamoDB write units per event, computed from item sizes, for events up to 20 KB. Anchor: the same item
   storing the raw JSON body instead of the compressed one.
3. DynamoDB write units per rejected event kept in the quarantine (the cap counter's UpdateItem plus the item),
   metered on moto with ``bench/meter.py``. Anchor: the write units of accepting the same events, metered the
   same way in this run.
4. The ``connections`` attribute (issue 13: each event item records its token's connections): write units per
   event with a token of 1 and of 5 connections. Anchor: the same items without the attribute.
5. Cold start of each handler: a fresh interpreter, in Lambda mode (LAMBDA_TASK_ROOT set, so the X-Ray
   SDK takes its Lambda path), importing the handler module and running its init, including the creation
   of its boto3 clients. Anchor: a bare ``import boto3`` in a fresh interpreter. Median of several runs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT / "tools"), str(ROOT)]

from lineage_intake.models import parse_event  # noqa: E402
from lineage_intake.principal import Principal  # noqa: E402
from lineage_intake.service.ingest import Outcome, build_item, canonical_json, describe, event_id_of  # noqa: E402
from lineage_intake.store.dynamo import item_size, write_units  # noqa: E402
from lineage_intake.store.events import BODY_ENCODING, encode_body  # noqa: E402

from tests.helpers.corpus import INVALID_FIXTURES, concrete_corpus_events  # noqa: E402

PRINCIPAL = Principal("tok_bench", frozenset())
SPEC = ROOT / "tests" / "fixtures" / "corpus" / "spec" / "OpenLineage.json"


def fixture_bodies() -> list[bytes]:
    return [json.dumps(ev).encode() for name, ev in concrete_corpus_events() if name not in INVALID_FIXTURES]


def ingest_work(body: bytes) -> tuple[dict[str, Any], bytes]:
    """What ingest does per event on the CPU, without the network write."""
    raw = json.loads(body)
    event = parse_event(raw)
    outcome: Outcome = describe(event)
    plain = canonical_json(raw)
    outcome.bytes = len(plain)
    outcome.event_id = event_id_of(plain)
    item = build_item(event, outcome, principal=PRINCIPAL, now=time.time(), retention_days=365)
    item |= {"bodyEnc": BODY_ENCODING, "body": encode_body(plain)}  # every attribute ingest writes
    return item, plain


def median_per_event(func: Any, bodies: list[bytes], repeat: int) -> float:
    """Median over events of the best-of-``repeat`` time of one call, in microseconds."""
    per_event = []
    for body in bodies:
        best = min(_time_once(func, body) for _ in range(repeat))
        per_event.append(best)
    return statistics.median(per_event) * 1e6


def _time_once(func: Any, body: bytes) -> float:
    started = time.perf_counter()
    func(body)
    return time.perf_counter() - started


def cpu_figure(repeat: int = 5) -> list[str]:
    import jsonschema

    schema = json.loads(SPEC.read_text())
    validator_cls = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema, format_checker=validator_cls.FORMAT_CHECKER)
    bodies = fixture_bodies()

    def schema_work(body: bytes) -> None:
        validator.is_valid(json.loads(body))

    ours = median_per_event(ingest_work, bodies, repeat)
    anchor = median_per_event(schema_work, bodies, repeat)
    ratio = anchor / ours
    return [
        f"ingest CPU per event (parse + validate + build item), median of {len(bodies)} fixture events: {ours:.1f} us",
        f"  anchor: jsonschema validation against spec 2-0-2: {anchor:.1f} us",
        f"  ratio: ingest is {ratio:.1f}x faster than the anchor (target >= 20x): {'MET' if ratio >= 20 else 'MISSED'}",
    ]


def wru_figure() -> list[str]:
    ours, raw_units = [], []
    for body in fixture_bodies():
        if len(body) > 20 * 1024:
            continue
        item, _plain = ingest_work(body)
        ours.append(write_units(item))
        raw_item = dict(item)
        raw_item["body"] = body  # the anchor stores the JSON as received
        raw_units.append(write_units(raw_item))
    mean_ours, mean_raw = statistics.mean(ours), statistics.mean(raw_units)
    return [
        f"DynamoDB write units per event (events <= 20 KB, n={len(ours)}): {mean_ours:.2f} WRU (max {max(ours)})",
        f"  anchor: the same item with the raw JSON body: {mean_raw:.2f} WRU",
        f"  ratio: {mean_ours / mean_raw:.2f} of the anchor (target <= 1.2 WRU on average): "
        f"{'MET' if mean_ours <= 1.2 else 'MISSED'}",
        *over_one_kb_figure(),
    ]


#: The attributes of an event item that the merge reads from the stream (service.merge.EventImage).
MERGE_IMAGE = frozenset({"pk", "sk", "kind", "namespace", "job", "dataset", "runId", "eventType", "eventTime"})


def items_within_one_kb() -> tuple[int, int]:
    """How many fixture events (<= 20 KB) make an item of at most 1 KB (1 WRU), of how many, by the meter's
    size rules."""
    sizes = [item_size(ingest_work(body)[0]) for body in fixture_bodies() if len(body) <= 20 * 1024]
    return sum(1 for size in sizes if size <= 1024), len(sizes)


def over_one_kb_figure() -> list[str]:
    """Why an item costs more than 1 WRU: its compressed body, or its other attributes (keys, names, times)."""
    within, total = items_within_one_kb()
    over = []
    for body in fixture_bodies():
        item, _plain = ingest_work(body)
        size = item_size(item)
        if size > 1024 and len(body) <= 20 * 1024:
            stored = len(item["body"]) + len("body")
            keys_only = item_size({"pk": item["pk"], "sk": item["sk"]}) + stored
            merge_only = item_size({k: v for k, v in item.items() if k in MERGE_IMAGE}) + stored
            over.append((size, stored, size - stored, keys_only, merge_only))
    head = f"  items <= 1 KB (1 WRU): {within} of {total} fixture events (<= 20 KB)"
    if not over:
        return [head]
    bodies, others = [o[1] for o in over], [o[2] for o in over]
    still = sum(1 for o in over if o[3] > 1024)
    still_merge = sum(1 for o in over if o[4] > 1024)
    return [
        head,
        f"  items over 1 KB (2+ WRU): {len(over)}; their compressed bodies {min(bodies)}-{max(bodies)} bytes, "
        f"other attributes {min(others)}-{max(others)} bytes; with no attribute but the keys {still} of them would "
        f"still be over 1 KB, with only the attributes the merge's stream image reads {still_merge} (only a body "
        f"under {1024 - max(others)} bytes makes every one 1 WRU as the item is)",
    ]


def connections_figure() -> list[str]:
    one = frozenset({"production"})
    five = frozenset({"production", "spark-prod", "airflow-prod", "dbt-analytics", "data-platform"})
    units: dict[str, list[int]] = {"none": [], "one": [], "five": []}
    for body in fixture_bodies():
        if len(body) > 20 * 1024:
            continue
        item, _plain = ingest_work(body)
        units["none"].append(write_units({k: v for k, v in item.items() if k != "connections"}))
        units["one"].append(write_units(item | {"connections": sorted(one)}))
        units["five"].append(write_units(item | {"connections": sorted(five)}))
    mean = {k: statistics.mean(v) for k, v in units.items()}
    crossed = sum(a != b for a, b in zip(units["none"], units["one"], strict=True))
    return [
        f"DynamoDB write units per event with the token's connections recorded (n={len(units['none'])}): "
        f"{mean['one']:.3f} WRU (1 connection), {mean['five']:.3f} WRU (5 connections)",
        f"  anchor: the same items without the attribute: {mean['none']:.3f} WRU",
        f"  events pushed over a 1 KB boundary by 1 connection: {crossed} of {len(units['none'])}",
    ]


_COLD = """
import sys, time
t0 = time.perf_counter()
{body}
print(round((time.perf_counter() - t0) * 1000, 2))
"""

INITS = {
    "IngestFunction": "import app\napp.service()",
    "AuthorizerFunction": "import app\napp.authorizer()",
    "MergeFunction": "import app\napp.service()",
    "StartGraceFunction": "import app\napp.service()",
}


def _cold_once(code: str, env: dict[str, str], paths: list[Path]) -> float:
    # The template turns X-Ray tracing on, so the Tracer's import counts: a POWERTOOLS_TRACE_DISABLED from the
    # caller's shell (the test suite sets it) must not leak in and make the figure look better than Lambda.
    inherited = {k: v for k, v in os.environ.items() if k != "POWERTOOLS_TRACE_DISABLED"}
    full_env = {**inherited, **env, "PYTHONPATH": os.pathsep.join(str(p) for p in paths)}
    out = subprocess.run(
        [sys.executable, "-c", _COLD.format(body=code)], env=full_env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def cold_start_figure(runs: int = 7) -> list[str]:
    from lineage_intake_tools.local.template import Stack

    stack = Stack.from_template(prefix="bench")
    lambda_env = {
        "LAMBDA_TASK_ROOT": "/var/task",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
    }
    anchor_runs = [_cold_once("import boto3", lambda_env, []) for _ in range(runs)]
    anchor = statistics.median(anchor_runs)
    lines = [f"cold start anchor: bare `import boto3` in a fresh interpreter: {anchor:.0f} ms (median of {runs})"]
    floor_code = (
        "import boto3, pydantic, aws_lambda_powertools.event_handler\n"
        "from aws_lambda_powertools import Logger, Metrics, Tracer\nTracer(); boto3.client('dynamodb')"
    )
    floor = statistics.median(_cold_once(floor_code, lambda_env, []) for _ in range(runs))
    lines.append(
        f"  for reference, the libraries alone (boto3, pydantic, Powertools event handler, Tracer, one client): "
        f"{floor:.0f} ms = {floor / anchor:.2f}x the anchor"
    )
    for logical in stack.functions():
        spec = stack.function(logical)
        if not (spec.code_dir / f"{spec.module}.py").exists():
            lines.append(f"  {logical}: no handler yet")
            continue
        paths = [*spec.layer_dirs, spec.code_dir]
        code = INITS.get(logical, "import app")
        _cold_once(code, {**lambda_env, **spec.environment}, paths)  # warm the .pyc cache
        figure = statistics.median(_cold_once(code, {**lambda_env, **spec.environment}, paths) for _ in range(runs))
        ratio = figure / anchor
        lines.append(
            f"  {logical}: import + init + clients {figure:.0f} ms = {ratio:.2f}x the anchor "
            f"(target <= 1.3x): {'MET' if ratio <= 1.3 else 'MISSED'}"
        )
    return lines


def quarantine_figure() -> list[str]:
    """Metered on moto: what a refused event costs to keep, against what accepting it costs."""
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_SESSION_TOKEN="testing")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    os.environ.pop("AWS_ENDPOINT_URL", None)
    import boto3
    from lineage_intake.config import IngestSettings
    from lineage_intake.service.ingest import IngestService
    from lineage_intake.service.quarantine import Quarantine
    from lineage_intake.store.events import EventsStore
    from lineage_intake.store.quarantine import QuarantineStore
    from lineage_intake_tools.local.template import Stack
    from meter import Meter
    from moto import mock_aws

    events = [json.loads(b) for b in fixture_bodies() if len(b) <= 20 * 1024]
    events = [e for e in events if isinstance(e.get("job"), dict)]
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        stack = Stack.from_template(prefix="bench")
        stack.create(session)
        ddb = session.client("dynamodb")
        meter = Meter().attach(ddb)
        store = EventsStore(ddb, stack.physical_name("EventsTable"), stack.physical_name("BodyBucket"), lambda: None)
        settings = IngestSettings(events_table=store.table, body_bucket=store.bucket)
        quarantine = Quarantine(QuarantineStore(store), retention_days=14, daily_cap=100_000)
        service = IngestService(store, settings, lambda _o: None, quarantine=quarantine)
        before = meter.snapshot()
        for event in events:  # refused: no token scope covers a job namespace
            assert service.store_event(event, Principal("tok_bench", frozenset({"-"}))).quarantined == "kept"
        rejected = meter.delta(before).total_wru / len(events)
        before = meter.snapshot()
        for event in events:
            namespace = event["job"]["namespace"]
            service.store_event(event, Principal("tok_bench", frozenset({namespace})))
        accepted = meter.delta(before).total_wru / len(events)
    return [
        f"DynamoDB write units per rejected event kept (quarantine, n={len(events)}, metered): {rejected:.2f} WRU",
        f"  anchor: accepting the same events, metered in this run: {accepted:.2f} WRU",
        f"  ratio: {rejected / accepted:.2f} (the cap counter adds 1 WRU; bounded by QuarantineDailyCapPerToken)",
    ]


def run() -> list[str]:
    return [*cpu_figure(), *wru_figure(), *connections_figure(), *quarantine_figure(), *cold_start_figure()]


if __name__ == "__main__":
    print("\n".join(run()))
