"""Merge lag under load (issue 13): the local stack ingesting 100 events/s for 60 s from 8 producers.

The stack runs as ``make run`` runs it (``e2e_bench.local_stack``). Runs are the proxy's docker START and
COMPLETE pair, each with a fresh runId, over 20 jobs; producers and the watcher are
``lineage_intake_tools.local.loadgen``: the lag of a run is from its COMPLETE's 200 to its run item showing
state COMPLETE (read every 100 ms). **Anchor:** the same lag at idle, measured first on the same stack (one
run at a time, ``IDLE_RUNS`` runs). Target: p99 under load at most 5 s.

``LOAD_BENCH_SECONDS=15`` shortens the load phase for a quick run (the issue's figure is 60 s).
Run standalone: ``python bench/load_bench.py`` (or ``make bench``).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "layers" / "shared"), str(ROOT / "tools")]

RATE = 100.0
THREADS = 8
SECONDS = float(os.environ.get("LOAD_BENCH_SECONDS", "60"))
JOBS = 20
IDLE_RUNS = 20
TARGET_P99 = 5.0
DRAIN_TIMEOUT = 300.0


def _pair(namespace: str) -> list[dict[str, Any]]:
    from e2e_bench import CORPUS, PAIR
    from lineage_intake_tools.local.demo import with_namespace

    return [with_namespace(json.loads((CORPUS / p).read_text()), namespace) for p in PAIR]


def _summary(lags: list[float]) -> tuple[float, float]:
    from e2e_bench import percentile

    samples = sorted(lags)
    return statistics.median(samples), percentile(samples, 0.99)


def run() -> list[str]:
    from e2e_bench import local_stack
    from lineage_intake_tools.local.loadgen import MergeWatcher, Producers, make_runs

    with local_stack() as stack:
        env = stack.env
        namespace = env["OPENLINEAGE_NAMESPACE"]
        pair = _pair(namespace)
        watcher_client = stack.client("dynamodb")
        with MergeWatcher(watcher_client, env["LINEAGE_LINEAGE_TABLE"]) as idle:
            # Idle: one run at a time (its COMPLETE merged before the next START), after a warm-up run per job.
            warm = Producers(env["OPENLINEAGE_URL"], env["OPENLINEAGE_API_KEY"], threads=4, rate=40.0)
            warm.run(make_runs(pair, namespace, JOBS, JOBS), idle.expect)
            idle.wait(DRAIN_TIMEOUT)
            idle.lags.clear()
            single = Producers(env["OPENLINEAGE_URL"], env["OPENLINEAGE_API_KEY"], threads=1, rate=10.0)
            for one in make_runs(pair, namespace, IDLE_RUNS, JOBS):
                single.run([one], idle.expect)
                idle.wait(60.0)
            idle_lags = list(idle.lags)
        runs = make_runs(pair, namespace, int(RATE * SECONDS), JOBS)  # more than the time allows
        with MergeWatcher(watcher_client, env["LINEAGE_LINEAGE_TABLE"]) as loaded:
            producers = Producers(env["OPENLINEAGE_URL"], env["OPENLINEAGE_API_KEY"], threads=THREADS, rate=RATE)
            producers.run(runs, loaded.expect, seconds=SECONDS)
            drained = time.perf_counter()
            left = loaded.wait(DRAIN_TIMEOUT)
            drain_seconds = time.perf_counter() - drained
            load_lags = list(loaded.lags)
    stats = producers.stats
    if left or not load_lags:
        raise RuntimeError(f"{left} runs were not merged within {DRAIN_TIMEOUT:.0f} s after the load")
    idle_p50, idle_p99 = _summary(idle_lags)
    p50, p99 = _summary(load_lags)
    verdict = "meets" if p99 <= TARGET_P99 else "MISSES"
    return [
        f"  load: {stats.sent / stats.seconds:.1f} events/s for {stats.seconds:.0f} s from {THREADS} producers "
        f"({stats.accepted} accepted, {len(stats.errors)} failed after retries); {len(load_lags)} runs merged, "
        f"the last {drain_seconds:.1f} s after the load ended",
        f"  merge lag under load (COMPLETE accepted -> run merged): p50 {p50:.2f} s, p99 {p99:.2f} s",
        f"  anchor: the same lag at idle: p50 {idle_p50:.2f} s, p99 {idle_p99:.2f} s ({len(idle_lags)} runs)",
        f"  ratio under load / idle: p50 {p50 / idle_p50:.1f}x, p99 {p99 / idle_p99:.1f}x; "
        f"p99 {verdict} the target of at most {TARGET_P99:.0f} s",
    ]


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
