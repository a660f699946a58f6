"""Read use case: the dashboard's ``/stats/*`` (Marquez's web UI, issue 14), from the runs' time index.

Runs are indexed by the UTC hour of their last event (gsi3, written by the merge with the run item): a window is
one gsi3 Query per UTC hour, never a scan, and nothing is written per run for stats. Each run counts once, in the
bucket (in the caller's time zone) that holds its UTC hour; a half-hour zone's buckets are therefore off by up to
that offset. Semantics per endpoint: docs/read-api.md "Stats".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lineage_intake.marquez import IntervalMetric, LineageMetric
from lineage_intake.marquez_ids import BadParameter
from lineage_intake.service.read_views import dataset_ref
from lineage_intake.store.catalog import CatalogStore

Period = Literal["DAY", "WEEK"]
Kind = Literal["jobs", "datasets", "sources"]
#: Distinct jobs whose datasets ``/stats/datasets`` and ``/stats/sources`` read (one Query each); beyond it
#: the counts cover the first jobs seen, newest hour first (docs/read-api.md "Stats").
MAX_STATS_JOBS = 500


def period_of(raw: str | None) -> Period:
    value = (raw or "DAY").upper()
    if value not in ("DAY", "WEEK"):
        raise BadParameter("period", f"must be DAY or WEEK, got {raw!r}")
    return "DAY" if value == "DAY" else "WEEK"


def zone_of(raw: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(raw or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadParameter("timezone", f"must be an IANA time zone such as Europe/Paris, got {raw!r}") from exc


def buckets(period: Period, zone: ZoneInfo, now: datetime) -> list[tuple[datetime, datetime]]:
    """Marquez's buckets: ``DAY`` the last 24 hours including the current one, ``WEEK`` the last 7 days in
    ``zone`` including today; oldest first, as (start, end) in ``zone``."""
    local = now.astimezone(zone)
    if period == "DAY":
        last = local.replace(minute=0, second=0, microsecond=0)
        starts = [last - timedelta(hours=h) for h in range(23, -1, -1)]
        return [(s, s + timedelta(hours=1)) for s in starts]
    today = local.date()
    days = [today - timedelta(days=d) for d in range(6, -1, -1)]
    out = []
    for day in days:
        start = datetime(day.year, day.month, day.day, tzinfo=zone)
        following = day + timedelta(days=1)
        out.append((start, datetime(following.year, following.month, following.day, tzinfo=zone)))
    return out


@dataclass
class StatsReader:
    lineage: CatalogStore
    clock: Any = lambda: datetime.now(UTC)

    def _runs(self, windows: list[tuple[datetime, datetime]]) -> list[tuple[int, dict[str, Any]]]:
        """(bucket index, run) of every run whose last event's UTC hour starts in a bucket: one Query per hour."""
        out = []
        hour = windows[0][0].astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        end = windows[-1][1].astimezone(UTC)
        index = 0
        while hour < end:
            while index < len(windows) - 1 and hour >= windows[index][1]:
                index += 1
            if hour >= windows[index][0]:
                out += [(index, run) for run in self.lineage.runs_of_hour(hour.strftime("%Y-%m-%dT%H"))]
            hour += timedelta(hours=1)
        return out

    def lineage_events(self, period: Period, zone: ZoneInfo) -> list[LineageMetric]:
        """Run events by type per bucket (the run item's ``eventTypes`` counts, in its last event's bucket)."""
        windows = buckets(period, zone, self.clock())
        counts = [dict.fromkeys(("START", "COMPLETE", "FAIL", "ABORT"), 0) for _ in windows]
        for index, run in self._runs(windows):
            types = run.get("eventTypes")
            for name, value in (types if isinstance(types, Mapping) else {}).items():
                if name in counts[index]:
                    counts[index][name] += int(value)
        return [
            LineageMetric(
                start_interval=start,
                end_interval=end,
                start=c["START"],
                complete=c["COMPLETE"],
                fail=c["FAIL"],
                abort=c["ABORT"],
            )
            for (start, end), c in zip(windows, counts, strict=True)
        ]

    def interval(self, kind: Kind, period: Period, zone: ZoneInfo) -> list[IntervalMetric]:
        """Distinct jobs that ran in each bucket; for ``datasets``/``sources``, the distinct datasets (or their
        namespaces, our source names) that those jobs read or write (their current edges)."""
        windows = buckets(period, zone, self.clock())
        seen: list[set[tuple[str, ...]]] = [set() for _ in windows]
        datasets: dict[tuple[str, str], set[tuple[str, str]]] = {}
        for index, run in sorted(self._runs(windows), key=lambda r: -r[0]):
            job = (str(run.get("namespace")), str(run.get("job")))
            if kind == "jobs":
                seen[index].add(job)
                continue
            if job not in datasets:
                if len(datasets) >= MAX_STATS_JOBS:
                    continue
                edges = self.lineage.job_edges(*job)
                current = [e for e in [*edges["inputs"], *edges["outputs"]] if e.get("current") is not False]
                refs = {dataset_ref(e.get("dataset")) for e in current}
                datasets[job] = {r for r in refs if r is not None}
            for ref in datasets[job]:
                seen[index].add(ref if kind == "datasets" else (ref[0],))
        return [
            IntervalMetric(start_interval=start, end_interval=end, count=len(s))
            for (start, end), s in zip(windows, seen, strict=True)
        ]
