"""Load against a running local stack: producer threads POSTing runs at a steady rate, and a watcher that sees
each run merged. ``make bench`` (bench/load_bench.py) measures the merge lag with it; tests/e2e/test_load.py
checks that nothing is lost or counted twice.

- ``Producers``: ``threads`` threads share one schedule of ``rate`` events per second (each thread sends every
  ``threads / rate`` seconds, keep-alive, the stack's API key). A run is its START, then its COMPLETE; a
  ``duplicates`` share of the events is sent a second time right after (a client retry), which ingest must
  answer ``duplicate`` without storing it again.
- ``MergeWatcher``: from the moment a run's COMPLETE is accepted, one thread reads the pending runs' items
  (consistent ``BatchGetItem`` of up to 100 keys every ``interval`` seconds: the item ``runs show`` reads) and
  records the lag until it shows state COMPLETE ("merged": the merge's own log line says the same, later).
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Run:
    namespace: str
    job: str
    run_id: str
    events: tuple[dict[str, Any], ...]


def make_runs(
    pair: Sequence[dict[str, Any]],
    namespace: str,
    count: int,
    jobs: int,
    prefix: str = "load-job",
    times_from: float | None = None,
) -> list[Run]:
    """``count`` fresh runs of the (START, COMPLETE) ``pair``, spread over ``jobs`` jobs of ``namespace``.

    ``times_from`` (epoch seconds): run ``n`` starts 10 ms after run ``n - 1`` and completes 5 ms after its start,
    as a scheduler's runs follow each other; without it every run keeps the pair's own eventTimes (all runs of
    a job at the same instant: the merge then orders them by runId, the harder case for its conditions)."""
    out = []
    for n in range(count):
        run_id, job = str(uuid.uuid4()), f"{prefix}-{n % jobs}"
        events = []
        for i, template in enumerate(pair):
            event = copy.deepcopy(template)
            event["job"]["namespace"], event["job"]["name"] = namespace, job
            event["run"]["runId"] = run_id
            if times_from is not None:
                stamp = datetime.fromtimestamp(times_from + n * 0.010 + i * 0.005, UTC)
                event["eventTime"] = stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            events.append(event)
        out.append(Run(namespace, job, run_id, tuple(events)))
    return out


class MergeWatcher:
    """Sees runs merged in the Lineage table; ``lags`` are seconds from COMPLETE accepted to merged."""

    def __init__(self, dynamodb: Any, table: str, interval: float = 0.1) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.interval = interval
        self.lags: list[float] = []
        self.merged: dict[str, dict[str, Any]] = {}  # runId -> the run item's state and eventCount
        self._pending: dict[tuple[str, str], tuple[str, float]] = {}  # key -> (runId, accepted at)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="merge-watcher", daemon=True)

    def __enter__(self) -> MergeWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def expect(self, run: Run, accepted_at: float) -> None:
        from lineage_intake import keys
        from lineage_intake.store.lineage_items import run_sk

        with self._lock:
            self._pending[(keys.run_key(run.run_id), run_sk(run.namespace, run.job))] = (run.run_id, accepted_at)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def wait(self, timeout: float) -> int:
        """Wait until every expected run is merged or ``timeout`` passed; the number still not merged."""
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.pending

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                waiting = list(self._pending)[:100]
            if waiting:
                self._read(waiting)
            self._stop.wait(self.interval)

    def _read(self, waiting: list[tuple[str, str]]) -> None:
        request = {
            self.table: {
                "Keys": [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in waiting],
                "ConsistentRead": True,
                "ProjectionExpression": "pk, sk, #s, eventCount",
                "ExpressionAttributeNames": {"#s": "state"},
            }
        }
        try:
            answer = self.dynamodb.batch_get_item(RequestItems=request)
        except Exception:  # the stand-in is busy: read again next time
            return
        seen = time.perf_counter()
        with self._lock:
            for item in answer["Responses"].get(self.table, []):
                key = (item["pk"]["S"], item["sk"]["S"])
                if item.get("state", {}).get("S") != "COMPLETE" or key not in self._pending:
                    continue
                run_id, accepted = self._pending.pop(key)
                self.lags.append(seen - accepted)
                self.merged[run_id] = {"state": "COMPLETE", "eventCount": int(item.get("eventCount", {}).get("N", 0))}


@dataclass
class ProducerStats:
    sent: int = 0
    accepted: int = 0
    duplicate: int = 0
    resent: int = 0  # events sent a second time on purpose (a client's retry)
    errors: list[str] = field(default_factory=list)
    # sends whose first attempt was stored but unanswered (a timeout under load), so the retry came back
    # "duplicate": accepted once, as exactly-once storage promises; the earlier attempts' errors, for the record
    retried: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Producers:
    """``threads`` threads POSTing the runs' events at ``rate`` events per second in all."""

    def __init__(self, url: str, api_key: str, threads: int, rate: float, duplicates: float = 0.0) -> None:
        self.url = url.rstrip("/") + "/api/v1/lineage"
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self.threads = threads
        self.rate = rate
        self.duplicates = duplicates
        self.stats = ProducerStats()
        self._lock = threading.Lock()

    def run(self, runs: Sequence[Run], on_complete: Callable[[Run, float], None], seconds: float | None = None) -> None:
        """Send ``runs`` (each thread takes the next run), until all are sent or ``seconds`` have passed."""
        import requests

        position = {"next": 0}
        started = time.perf_counter()
        deadline = started + seconds if seconds is not None else float("inf")
        period = self.threads / self.rate

        def producer(index: int) -> None:
            session = requests.Session()
            due = started + index * period / self.threads
            sent_here = 0
            while time.perf_counter() < deadline:
                with self._lock:
                    n = position["next"]
                    position["next"] += 1
                if n >= len(runs):
                    return
                run = runs[n]
                for event in run.events:
                    due = self._pace(due, period)
                    copies = 2 if self._is_duplicate(sent_here) else 1
                    sent_here += 1
                    if copies == 2:
                        with self._lock:
                            self.stats.resent += 1
                    statuses = [self._post(session, event, resend=copy > 0) for copy in range(copies)]
                    if "accepted" in statuses and event is run.events[-1]:
                        on_complete(run, time.perf_counter())

        workers = [threading.Thread(target=producer, args=(i,), name=f"producer-{i}") for i in range(self.threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        self.stats.seconds = time.perf_counter() - started

    def _is_duplicate(self, sent: int) -> bool:
        return self.duplicates > 0 and sent % round(1 / self.duplicates) == 0

    @staticmethod
    def _pace(due: float, period: float) -> float:
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        return max(due, time.perf_counter() - period) + period

    def _post(self, session: Any, event: dict[str, Any], resend: bool = False) -> str:
        """POST one event; retried (as clients do) on 5xx and connection errors. Its status, or "error".
        ``resend``: a deliberate second copy, whose "duplicate" stays one even after a failed attempt."""
        body = json.dumps(event)
        failed: list[str] = []
        for attempt in range(5):
            try:
                answer = session.post(self.url, data=body, headers=self.headers, timeout=30)
            except Exception as exc:
                error = repr(exc)
            else:
                if answer.status_code == 200:
                    status = str(answer.json().get("status", "accepted"))
                    if status == "duplicate" and failed and not resend:
                        status = "accepted"  # this send's own earlier attempt stored it
                        with self._lock:
                            self.stats.retried.append("; ".join(failed))
                    with self._lock:
                        self.stats.sent += 1
                        if status == "duplicate":
                            self.stats.duplicate += 1
                        else:
                            self.stats.accepted += 1
                    return status
                error = f"{answer.status_code}: {answer.text[:200]}"
                if answer.status_code < 500:
                    break
            failed.append(error)
            time.sleep(0.2 * (attempt + 1))
        with self._lock:
            self.stats.sent += 1
            self.stats.errors.append(error)
        return "error"
