"""Merge lag under load (issue 13): the local stack ingesting 100 events/s for 60 s from 8 producers.

The stack runs as ``make run`` runs it (``e2e_bench.local_stack``). Runs are the proxy's docker START and
COMPLETE pair, each with a fresh runId and its own eventTimes (10 ms after the run before), over 20 jobs;
producers and the watcher are ``lineage_intake_tools.local.loadgen``: the lag of a run is from its COMPLETE's
200 to its run item showing state COMPLETE (read every 100 ms). **Anchor:** the same lag at idle, measured
first on the same stack (one run at a time, ``IDLE_RUNS`` runs). Target: p99 under load at most 5 s. Beside
it, the CPU seconds per accepted event of the stack's processes (from /proc), which other processes on the
machine do not change, and the load average.

``LOAD_BENCH_SECONDS=15`` shortens the load phase for a quick run (the issue's figure is 60 s);
``LOAD_BENCH_RATE=20`` sends fewer events per second (a rate the stack keeps up with compares CPU per event).
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

RATE = float(os.environ.get("LOAD_BENCH_RATE", "100"))
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


def _cpu(pid: int) -> tuple[float, float] | None:
    """CPU seconds (user + system) so far of the stack process (with the workers it has reaped) and of its live
    descendants (the function workers), from /proc; None where there is no /proc. Unlike wall time, CPU time per
    event does not depend on how many other processes share the cores."""
    proc = Path("/proc")
    if not (proc / str(pid) / "stat").exists():
        return None
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, list[str]] = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue  # gone meanwhile
    children: dict[int, list[int]] = {}
    for child, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(child)
    own = stats.get(pid)
    if own is None:
        return None
    # Fields after the command: state, ppid, ... utime (index 11), stime, cutime, cstime (clock ticks).
    main = sum(int(own[i]) for i in (11, 12, 13, 14)) / tick
    workers, todo = 0.0, list(children.get(pid, []))
    while todo:
        child = todo.pop()
        workers += (int(stats[child][11]) + int(stats[child][12])) / tick
        todo += children.get(child, [])
    return main, workers


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "n/a"


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
            warm.run(make_runs(pair, namespace, JOBS, JOBS, times_from=time.time()), idle.expect)
            idle.wait(DRAIN_TIMEOUT)
            idle.lags.clear()
            single = Producers(env["OPENLINEAGE_URL"], env["OPENLINEAGE_API_KEY"], threads=1, rate=10.0)
            for one in make_runs(pair, namespace, IDLE_RUNS, JOBS, times_from=time.time()):
                single.run([one], idle.expect)
                idle.wait(60.0)
            idle_lags = list(idle.lags)
        # more runs than the time allows; each run 10 ms after the one before, as a scheduler's runs follow
        runs = make_runs(pair, namespace, int(RATE * SECONDS), JOBS, times_from=time.time())
        with MergeWatcher(watcher_client, env["LINEAGE_LINEAGE_TABLE"]) as loaded:
            producers = Producers(env["OPENLINEAGE_URL"], env["OPENLINEAGE_API_KEY"], threads=THREADS, rate=RATE)
            cpu_before, load_before = _cpu(stack.process.pid), _loadavg()
            producers.run(runs, loaded.expect, seconds=SECONDS)
            load_during = _loadavg()
            drained = time.perf_counter()
            left = loaded.wait(DRAIN_TIMEOUT)
            drain_seconds = time.perf_counter() - drained
            cpu_after = _cpu(stack.process.pid)
            load_lags = list(loaded.lags)
    stats = producers.stats
    if left or not load_lags:
        raise RuntimeError(f"{left} runs were not merged within {DRAIN_TIMEOUT:.0f} s after the load")
    cpu_line = "  CPU per event: n/a (no /proc)"
    if cpu_before is not None and cpu_after is not None and stats.accepted:
        main = (cpu_after[0] - cpu_before[0]) / stats.accepted
        workers = (cpu_after[1] - cpu_before[1]) / stats.accepted
        cpu_line = (
            f"  CPU per accepted event (load and drain): {1000 * (main + workers):.1f} ms: {1000 * main:.1f} ms in "
            f"the stack process (moto, HTTP front, stream poller), {1000 * workers:.1f} ms in the function workers "
            f"(authorizer, ingest, merge); load average {load_before} before the load, {load_during} at its end "
            f"({os.cpu_count()} cores, shared)"
        )
    idle_p50, idle_p99 = _summary(idle_lags)
    p50, p99 = _summary(load_lags)
    verdict = "meets" if p99 <= TARGET_P99 else "MISSES"
    return [
        f"  load: {stats.sent / stats.seconds:.1f} events/s for {stats.seconds:.0f} s from {THREADS} producers "
        f"({stats.accepted} accepted, {len(stats.retried)} of them by a retry after an unanswered attempt, "
        f"{len(stats.errors)} failed after retries); {len(load_lags)} runs merged, "
        f"the last {drain_seconds:.1f} s after the load ended",
        f"  merge lag under load (COMPLETE accepted -> run merged): p50 {p50:.2f} s, p99 {p99:.2f} s",
        cpu_line,
        f"  anchor: the same lag at idle: p50 {idle_p50:.2f} s, p99 {idle_p99:.2f} s ({len(idle_lags)} runs)",
        f"  ratio under load / idle: p50 {p50 / idle_p50:.1f}x, p99 {p99 / idle_p99:.1f}x; "
        f"p99 {verdict} the target of at most {TARGET_P99:.0f} s",
    ]


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
