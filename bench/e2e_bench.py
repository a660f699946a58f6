"""End-to-end benchmarks on the local stack (``make run``), each figure next to its anchor from the same run.

The stack runs as users run it, ``python -m lineage_intake_tools.local.stack`` in a subprocess (its logs are
discarded), with its defaults (up to four worker processes per function, started on demand).

1. **Events per second through the HTTP front, ingest and storage.** Real events (the proxy's docker START and
   COMPLETE pair, each run with a fresh runId) are POSTed to ``/api/v1/lineage`` with ``requests`` from
   ``CLIENTS`` threads, keep-alive, with the API key. **Anchor:** raw boto3 ``PutItem`` calls of the same items
   (built by ingest's own code path, ``IngestService.store_event``, with a recording client, then replayed,
   condition expression included) into the same Events table of the same moto server, from as many threads.
   The two alternate in ``ROUNDS`` slices of ``SLICE_SECONDS`` each, so that other load on the machine and
   the merge (which works through the stream behind both, on the same moto server) weigh on both alike.
   Target: the HTTP rate is at least 50 % of the raw rate.
2. **Latency from a terminal event accepted to its merged run readable**, p50 and p99: after a run's START,
   its COMPLETE is POSTed; the clock starts when the 200 arrives and stops when ``GetItem`` of the run record
   (what ``lineage-intake runs show`` reads) shows state COMPLETE. Runs start every 200 ms, so the stream
   carries a steady trickle, and one reader thread polls the pending runs. It includes the template's
   ``MaximumBatchingWindowInSeconds`` (1 s). **Anchor:** the same POST's own latency (accepted), and the
   2 s target for p99.

Run standalone: ``python bench/e2e_bench.py`` (or ``make bench``, which also runs the other suites).
``BENCH_STACK_ARGS="--concurrency 1"`` passes extra options to the stack, to compare settings.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT / "tools")]

CORPUS = ROOT / "tests" / "fixtures" / "corpus"
PAIR = (
    "openlineage/events/proxy-fluentd/docker/test-start.json",
    "openlineage/events/proxy-fluentd/docker/test-complete.json",
)
CLIENTS = 4
ROUNDS = 4
SLICE_SECONDS = 1.5
LATENCY_RUNS = 40
LATENCY_SPACING = 0.2
START_TIMEOUT = 60.0
MERGE_TIMEOUT = 120.0


# ---------------------------------------------------------------------------- the stack
@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    env: dict[str, str]

    def client(self, service: str) -> Any:
        import boto3
        from botocore.config import Config
        from lineage_intake_tools.envfile import endpoint_url

        session = boto3.Session(
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region_name=self.env["AWS_REGION"],
        )
        config = Config(max_pool_connections=CLIENTS * 2, retries={"mode": "standard", "max_attempts": 3})
        return session.client(service, endpoint_url=endpoint_url(self.env, service), config=config)


@contextmanager
def local_stack(*args: str) -> Iterator[Stack]:
    from lineage_intake_tools.local.stack import command as stack_command

    with tempfile.TemporaryDirectory(prefix="lineage-bench-") as tmp:
        env_file = Path(tmp) / "openlineage.env"
        process = subprocess.Popen(
            stack_command(env_file, *os.environ.get("BENCH_STACK_ARGS", "").split(), *args),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPENLINEAGE_"))},
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not env_file.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the local stack did not start (run `make run` to see why)")
                time.sleep(0.05)
            env = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
            yield Stack(process=process, env=env)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


# ---------------------------------------------------------------------------- events and items
def runs(namespace: str, count: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``count`` fresh runs (START, COMPLETE) of one job in ``namespace``."""
    from lineage_intake_tools.local.demo import with_namespace

    pair = [with_namespace(json.loads((CORPUS / p).read_text()), namespace) for p in PAIR]
    out = []
    for _ in range(count):
        run_id = str(uuid.uuid4())
        events = []
        for template in pair:
            event = copy.deepcopy(template)
            event["run"]["runId"] = run_id
            event["job"]["name"] = "bench-job"
            events.append(event)
        out.append((events[0], events[1]))
    return out


class _Recorder:
    """A DynamoDB client that records the PutItem calls it is given instead of sending them."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {}


def items_as_ingest_builds_them(stack: Stack, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The exact PutItem requests ingest sends for ``events`` (same code path, recorded, not sent)."""
    from lineage_intake.config import IngestSettings
    from lineage_intake.principal import Principal
    from lineage_intake.service.ingest import IngestService
    from lineage_intake.store.events import EventsStore
    from lineage_intake.tokens import parse_token

    table, bucket = stack.env["LINEAGE_EVENTS_TABLE"], stack.env["LINEAGE_BODY_BUCKET"]
    recorder = _Recorder()
    settings = IngestSettings.from_env({"EVENTS_TABLE": table, "BODY_BUCKET": bucket})
    service = IngestService(EventsStore(recorder, table, bucket, lambda: None), settings, lambda outcome: None)
    principal = Principal(
        parse_token(stack.env["OPENLINEAGE_API_KEY"]).token_id, frozenset({stack.env["OPENLINEAGE_NAMESPACE"]})
    )
    for event in events:
        outcome = service.store_event(event, principal)
        assert outcome.status == "accepted", outcome
    return recorder.calls


# ---------------------------------------------------------------------------- measurements
def timed_parallel(work: list[Any], worker: Callable[[Any], None], seconds: float) -> tuple[int, float]:
    """Run ``worker`` over ``work`` from ``CLIENTS`` threads, in order, until ``seconds`` have passed (or the
    work is done). Returns how many items were done and the time they took."""
    lock = threading.Lock()
    position = {"next": 0, "done": 0}
    started = time.perf_counter()
    deadline = started + seconds

    def loop() -> None:
        while time.perf_counter() < deadline:
            with lock:
                index = position["next"]
                if index >= len(work):
                    return
                position["next"] = index + 1
            worker(work[index])
            with lock:
                position["done"] += 1

    with ThreadPoolExecutor(CLIENTS) as pool:
        for future in [pool.submit(loop) for _ in range(CLIENTS)]:
            future.result()
    return position["done"], time.perf_counter() - started


def http_poster(stack: Stack) -> Callable[[bytes], None]:
    import requests

    local = threading.local()
    headers = {"Authorization": f"Bearer {stack.env['OPENLINEAGE_API_KEY']}", "Content-Type": "application/json"}
    url = stack.env["OPENLINEAGE_URL"] + "/api/v1/lineage"

    def post(body: bytes) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        answer = local.session.post(url, data=body, headers=headers, timeout=30)
        if answer.status_code != 200:
            raise RuntimeError(f"POST answered {answer.status_code}: {answer.text[:200]}")

    return post


def throughput(stack: Stack) -> list[str]:
    namespace = stack.env["OPENLINEAGE_NAMESPACE"]
    post = http_poster(stack)
    # Warm up as a steady service would be: the authorizer's cache, a connection per client, and the function
    # containers that concurrent requests start (their cold starts are not what this figure measures).
    timed_parallel([json.dumps(start).encode() for start, _ in runs(namespace, CLIENTS * 4)], post, 30.0)
    ddb = stack.client("dynamodb")
    ddb.describe_table(TableName=stack.env["LINEAGE_EVENTS_TABLE"])  # open the connection pool

    budget = int(ROUNDS * SLICE_SECONDS * 400)  # more work than either path can do in its time
    raw_requests = items_as_ingest_builds_them(stack, [e for pair in runs(namespace, budget // 2) for e in pair])
    bodies = [json.dumps(e).encode() for pair in runs(namespace, budget // 2) for e in pair]
    raw = [0, 0.0]
    http = [0, 0.0]
    # The two paths alternate in short slices, so that other load on the machine and the merge working through
    # the stream in the background weigh on both alike.
    for _ in range(ROUNDS):
        count, seconds = timed_parallel(raw_requests[raw[0] :], lambda kwargs: ddb.put_item(**kwargs), SLICE_SECONDS)
        raw[0] += count
        raw[1] += seconds
        count, seconds = timed_parallel(bodies[http[0] :], post, SLICE_SECONDS)
        http[0] += count
        http[1] += seconds

    raw_rate, http_rate = raw[0] / raw[1], http[0] / http[1]
    ratio = http_rate / raw_rate
    verdict = "meets" if ratio >= 0.5 else "MISSES"
    return [
        f"  events/s through HTTP front + authorizer (cached) + ingest + storage: {http_rate:7.1f} "
        f"({int(http[0])} events in {http[1]:.1f} s, {CLIENTS} clients)",
        f"  anchor: raw boto3 PutItem of the same items, same moto server:        {raw_rate:7.1f} "
        f"({int(raw[0])} items in {raw[1]:.1f} s, {CLIENTS} clients)",
        f"  ratio {ratio:.0%} of the raw rate: {verdict} the target of at least 50%",
    ]


def latency(stack: Stack) -> list[str]:
    from lineage_intake import keys
    from lineage_intake.store.lineage_items import run_sk

    namespace = stack.env["OPENLINEAGE_NAMESPACE"]
    post = http_poster(stack)
    ddb = stack.client("dynamodb")
    table = stack.env["LINEAGE_LINEAGE_TABLE"]
    pending: dict[str, float] = {}  # run key -> when its COMPLETE was accepted
    done: list[float] = []
    lock = threading.Lock()
    finished = threading.Event()

    def reader() -> None:
        """One consistent BatchGetItem of the pending run records every 50 ms (the records `runs show` reads):
        the measurement itself stays a small load on the stack."""
        while not finished.is_set() or pending:
            with lock:
                waiting = list(pending)[:100]
            if waiting:
                request = {
                    table: {
                        "Keys": [{"pk": {"S": k}, "sk": {"S": run_sk(namespace, "bench-latency")}} for k in waiting],
                        "ConsistentRead": True,
                        "ProjectionExpression": "pk, #s",
                        "ExpressionAttributeNames": {"#s": "state"},
                    }
                }
                answer = ddb.batch_get_item(RequestItems=request)
                seen = time.perf_counter()
                with lock:
                    for item in answer["Responses"].get(table, []):
                        if item.get("state", {}).get("S") == "COMPLETE" and item["pk"]["S"] in pending:
                            done.append(seen - pending.pop(item["pk"]["S"]))
            time.sleep(0.05)

    watcher = threading.Thread(target=reader, name="bench-reader")
    watcher.start()
    accept_latency = []
    try:
        for start, complete in runs(namespace, LATENCY_RUNS):
            start["job"]["name"] = complete["job"]["name"] = "bench-latency"
            post(json.dumps(start).encode())
            sent = time.perf_counter()
            post(json.dumps(complete).encode())
            accepted = time.perf_counter()
            accept_latency.append(accepted - sent)
            with lock:
                pending[keys.run_key(complete["run"]["runId"])] = accepted
            time.sleep(LATENCY_SPACING)
        deadline = time.monotonic() + MERGE_TIMEOUT
        while pending and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        finished.set()
        with lock:
            left = len(pending)
            pending.clear()
        watcher.join()
    if left:
        raise RuntimeError(f"{left} runs were not merged within {MERGE_TIMEOUT} s")
    samples = sorted(done)
    p50, p99 = statistics.median(samples), percentile(samples, 0.99)
    verdict = "meets" if p99 <= 2.0 else "MISSES"
    return [
        f"  terminal event accepted -> merged run readable: p50 {p50:.2f} s, p99 {p99:.2f} s ({len(samples)} runs)",
        f"  anchor: the POST of that event itself: p50 {statistics.median(accept_latency) * 1000:.0f} ms; "
        f"the template's batching window: 1 s",
        f"  p99 {verdict} the target of at most 2 s",
    ]


def percentile(sorted_samples: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    index = max(0, min(len(sorted_samples) - 1, round(q * len(sorted_samples) + 0.5) - 1))
    return sorted_samples[index]


def run() -> list[str]:
    lines: list[str] = []
    with local_stack() as stack:
        # Latency first, on the fresh stack: moto answers index queries by scanning, so the merge slows down
        # as the throughput phases fill the tables (DynamoDB does not).
        latency_lines = latency(stack)
        lines += throughput(stack)
        lines += latency_lines
    return lines


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
