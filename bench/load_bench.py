"""Merge lag under load (issue 13): the local stack ingesting 100 events/s for 60 s from 8 producers.

The stack runs as ``make run`` runs it (``e2e_bench.local_stack``). Runs are the proxy's docker START and
COMPLETE pair, each with a fresh runId and its own eventTimes (10 ms after the run before), over 20 jobs;
producers and the watcher are ``lineage_intake_tools.local.loadgen``: the lag of a run is from its COMPLETE's
200 to its run item showing state COMPLETE (read every 100 ms). **Anchor:** the same lag at idle, measured
first on the same stack (one run at a time, ``IDLE_RUNS`` runs). Target: p99 under load at most 5 s.

Whether a miss is the design's or the machine's: every phase also meters the CPU seconds per accepted event of
the stack's processes (from /proc: the stack process, which hosts moto, the HTTP front and the stream poller,
and the function workers), with the load average beside it (CPU per event moves less with contention than
time does, but not nothing). From it, the cores that 100 events/s would need; and the lag at the highest of
``CAPACITY_RATES`` that this machine sustains (accepted at 95 % of the rate and merged within the target after
the load). **Comparison:** the same rate on a second fresh stack that serves DynamoDB through moto's server
too (``--dynamodb-via-moto-server``, the stand-in before ``dynamodb_endpoint``), so the endpoint's gain is
measured in the same run. docs/merge.md "Throughput".

``LOAD_BENCH_SECONDS=15`` shortens the 100 events/s phase (the issue's figure is 60 s); ``LOAD_BENCH_RATE``
changes its rate; ``LOAD_BENCH_COMPARE=0`` skips the second stack. Run standalone: ``python bench/load_bench.py``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "layers" / "shared"), str(ROOT / "tools")]

RATE = float(os.environ.get("LOAD_BENCH_RATE", "100"))
THREADS = 8
SECONDS = float(os.environ.get("LOAD_BENCH_SECONDS", "60"))
COMPARE = os.environ.get("LOAD_BENCH_COMPARE", "1") != "0"
JOBS = 20
IDLE_RUNS = 20
WARM_RUNS = 20
TARGET_P99 = 5.0
#: Tried highest first, each for ``CAPACITY_SECONDS``, until one is sustained.
CAPACITY_RATES = (80.0, 60.0, 40.0, 20.0)
CAPACITY_SECONDS = 15.0
#: Sustained: this share of the offered events accepted, and the last run merged within the target after the load.
KEEPS_UP = 0.95
DRAIN_TIMEOUT = 300.0


@dataclass
class Phase:
    """One load phase: offered rate, what the producers saw, the lags, and CPU per accepted event (ms)."""

    rate: float
    seconds: float
    sent: int
    accepted: int
    retried: int
    failed: int
    lags: list[float] = field(default_factory=list)
    drain_seconds: float = 0.0
    stack_ms: float | None = None
    workers_ms: float | None = None
    load_before: str = ""
    load_after: str = ""

    @property
    def accepted_rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float | None:
        return None if self.stack_ms is None or self.workers_ms is None else self.stack_ms + self.workers_ms

    @property
    def sustained(self) -> bool:
        return self.accepted_rate >= KEEPS_UP * self.rate and self.drain_seconds <= TARGET_P99

    def cpu(self) -> str:
        if self.cpu_ms is None:
            return "CPU n/a (no /proc)"
        return (
            f"{self.cpu_ms:.1f} ms CPU per accepted event ({self.stack_ms:.1f} ms stack process, "
            f"{self.workers_ms:.1f} ms function workers)"
        )

    def load(self) -> str:
        return f"load average {self.load_before} -> {self.load_after}"

    def lag(self) -> str:
        p50, p99 = _summary(self.lags)
        return f"p50 {p50:.2f} s, p99 {p99:.2f} s"


def _pair(namespace: str) -> list[dict[str, Any]]:
    from e2e_bench import CORPUS, PAIR
    from lineage_intake_tools.local.demo import with_namespace

    return [with_namespace(json.loads((CORPUS / p).read_text()), namespace) for p in PAIR]


def _cpu(pid: int) -> tuple[float, float] | None:
    """CPU seconds (user + system) so far of the stack process (with the workers it has reaped) and of its live
    descendants (the function workers), from /proc; None where there is no /proc."""
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


def _warm(stack: Any) -> None:
    """A run per job first (each job's first merge creates its items), merged before anything is measured."""
    from lineage_intake_tools.local.loadgen import MergeWatcher, Producers, make_runs

    env, namespace = stack.env, stack.env["OPENLINEAGE_NAMESPACE"]
    with MergeWatcher(stack.client("dynamodb"), env["LINEAGE_LINEAGE_TABLE"]) as watcher:
        warm = Producers(env["OPENLINEAGE_URL"], env["OPENLINEAGE_API_KEY"], threads=4, rate=40.0)
        warm.run(make_runs(_pair(namespace), namespace, WARM_RUNS, JOBS, times_from=time.time()), watcher.expect)
        watcher.wait(DRAIN_TIMEOUT)


def _idle(stack: Any) -> list[float]:
    """One run at a time, its COMPLETE merged before the next START."""
    from lineage_intake_tools.local.loadgen import MergeWatcher, Producers, make_runs

    env, namespace = stack.env, stack.env["OPENLINEAGE_NAMESPACE"]
    with MergeWatcher(stack.client("dynamodb"), env["LINEAGE_LINEAGE_TABLE"]) as idle:
        single = Producers(env["OPENLINEAGE_URL"], env["OPENLINEAGE_API_KEY"], threads=1, rate=10.0)
        for one in make_runs(_pair(namespace), namespace, IDLE_RUNS, JOBS, times_from=time.time()):
            single.run([one], idle.expect)
            idle.wait(60.0)
        return list(idle.lags)


def _load(stack: Any, rate: float, seconds: float) -> Phase:
    """``rate`` events/s from ``THREADS`` producers for ``seconds``, then until every accepted run is merged."""
    from lineage_intake_tools.local.loadgen import MergeWatcher, Producers, make_runs

    env, namespace = stack.env, stack.env["OPENLINEAGE_NAMESPACE"]
    # more runs than the time allows; each run 10 ms after the one before, as a scheduler's runs follow
    runs = make_runs(_pair(namespace), namespace, int(rate * seconds), JOBS, times_from=time.time())
    with MergeWatcher(stack.client("dynamodb"), env["LINEAGE_LINEAGE_TABLE"]) as watcher:
        producers = Producers(env["OPENLINEAGE_URL"], env["OPENLINEAGE_API_KEY"], threads=THREADS, rate=rate)
        cpu_before, load_before = _cpu(stack.process.pid), _loadavg()
        producers.run(runs, watcher.expect, seconds=seconds)
        load_after = _loadavg()
        drained = time.perf_counter()
        left = watcher.wait(DRAIN_TIMEOUT)
        drain_seconds = time.perf_counter() - drained
        cpu_after = _cpu(stack.process.pid)
        lags = list(watcher.lags)
    stats = producers.stats
    if left or not lags:
        raise RuntimeError(f"{left} runs were not merged within {DRAIN_TIMEOUT:.0f} s after the load at {rate:.0f}/s")
    phase = Phase(
        rate=rate,
        seconds=stats.seconds,
        sent=stats.sent,
        accepted=stats.accepted,
        retried=len(stats.retried),
        failed=len(stats.errors),
        lags=lags,
        drain_seconds=drain_seconds,
        load_before=load_before,
        load_after=load_after,
    )
    if cpu_before is not None and cpu_after is not None and stats.accepted:
        phase.stack_ms = 1000 * (cpu_after[0] - cpu_before[0]) / stats.accepted
        phase.workers_ms = 1000 * (cpu_after[1] - cpu_before[1]) / stats.accepted
    return phase


def run() -> list[str]:
    from e2e_bench import local_stack

    capacity: Phase | None = None
    tried: list[Phase] = []
    with local_stack() as stack:
        _warm(stack)
        idle_lags = _idle(stack)
        # The sustainable rate first, on a stack that holds only the warm-up (as the comparison's stack does).
        for rate in CAPACITY_RATES:
            phase = _load(stack, rate, CAPACITY_SECONDS)
            tried.append(phase)
            if phase.sustained:
                capacity = phase
                break
        full = _load(stack, RATE, SECONDS)
    compared: Phase | None = None
    if COMPARE and capacity is not None:
        with local_stack("--dynamodb-via-moto-server") as stack:
            _warm(stack)
            compared = _load(stack, capacity.rate, CAPACITY_SECONDS)

    idle_p50, idle_p99 = _summary(idle_lags)
    p50, p99 = _summary(full.lags)
    verdict = "meets" if p99 <= TARGET_P99 else "MISSES"
    lines = [
        f"  load: {full.sent / full.seconds:.1f} events/s for {full.seconds:.0f} s from {THREADS} producers "
        f"({full.accepted} accepted, {full.retried} of them by a retry after an unanswered attempt, "
        f"{full.failed} failed after retries); the last run merged {full.drain_seconds:.1f} s after the load ended",
        f"  merge lag under load (COMPLETE accepted -> run merged): {full.lag()} ({full.load()}, "
        f"{os.cpu_count()} cores, shared)",
        f"  anchor: the same lag at idle: p50 {idle_p50:.2f} s, p99 {idle_p99:.2f} s ({len(idle_lags)} runs)",
        f"  ratio under load / idle: p50 {p50 / idle_p50:.1f}x, p99 {p99 / idle_p99:.1f}x; "
        f"p99 {verdict} the target of at most {TARGET_P99:.0f} s",
        f"  CPU at {RATE:.0f} events/s offered: {full.cpu()}",
    ]
    if full.cpu_ms is not None:
        lines.append(
            f"  capacity: {RATE:.0f} events/s at {full.cpu_ms:.1f} ms per event needs {RATE * full.cpu_ms / 1000:.1f} "
            f"cores for the stack's processes (the producers not counted); this machine has {os.cpu_count()} "
            f"(shared: load average {full.load_after} at the end of the load), so it accepted "
            f"{full.accepted_rate:.1f} events/s"
        )
    for phase in tried:
        state = "sustained" if phase.sustained else "not sustained"
        lines.append(
            f"  at {phase.rate:.0f} events/s for {phase.seconds:.0f} s: {state} ({phase.accepted_rate:.1f} accepted/s, "
            f"last run merged {phase.drain_seconds:.1f} s after); lag {phase.lag()}; {phase.cpu()}; {phase.load()}"
        )
    if capacity is None:
        lines.append(
            f"  none of {', '.join(f'{r:.0f}' for r in CAPACITY_RATES)} events/s was sustained on this machine"
        )
    else:
        _, c99 = _summary(capacity.lags)
        lines.append(
            f"  at the highest sustained rate ({capacity.rate:.0f} events/s) the lag p99 is {c99:.2f} s: "
            f"{'meets' if c99 <= TARGET_P99 else 'MISSES'} the target of {TARGET_P99:.0f} s "
            f"({c99 / idle_p99:.1f}x the idle p99)"
        )
    if compared is not None and capacity is not None:
        line = (
            f"  comparison at {compared.rate:.0f} events/s, DynamoDB through moto's server as before the lean "
            f"endpoint: {compared.cpu()}; lag {compared.lag()}; {compared.load()}"
        )
        if compared.stack_ms and capacity.stack_ms is not None and capacity.cpu_ms and compared.cpu_ms:
            line += (
                f". The lean endpoint: stack process {100 * (1 - capacity.stack_ms / compared.stack_ms):.0f} % less "
                f"CPU per event, all processes {100 * (1 - capacity.cpu_ms / compared.cpu_ms):.0f} % less"
            )
        if compared.workers_ms and capacity.workers_ms is not None:
            # The workers run the same code on both stacks: what their figure moved is the machine's contention.
            line += (
                f" (control: the function workers, the same code on both stacks, "
                f"{100 * (capacity.workers_ms / compared.workers_ms - 1):+.0f} %)"
            )
        lines.append(line)
    return lines


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
