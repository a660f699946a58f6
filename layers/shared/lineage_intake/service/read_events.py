"""Read use cases: the stored raw events, newest first (``/events/lineage``, and ``/events[/{namespace}]``
that ``marquez-python`` 0.50.0 calls), and search (``/search``).

Events: runs are indexed by the UTC day of their last event (gsi4). Walking days from ``before`` down, after a
day D is read every event at or after the start of D is known (an event is never later than its run's last
event), so the walk stops as soon as ``offset + limit`` events are known complete. One Query per day walked,
one per run read; at most ``MAX_EVENT_DAYS`` days when ``after`` is not given (docs/read-api.md "Events").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from lineage_intake import keys
from lineage_intake.marquez import LineageEventList, SearchResult, SearchResultList
from lineage_intake.marquez_ids import Page, dataset_node_id, job_node_id
from lineage_intake.service.read_catalog import EventSource
from lineage_intake.service.read_views import time_of
from lineage_intake.store.lineage_read import LineageReader

MAX_EVENT_DAYS = 90
#: Namespaces a search walks (each is one filtered listing Query per kind).
MAX_SEARCH_NAMESPACES = 100


def _fmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class EventsReader:
    lineage: LineageReader
    events: EventSource
    clock: Any = lambda: datetime.now(UTC)

    def lineage_events(
        self,
        page: Page,
        before: datetime | None = None,
        after: datetime | None = None,
        namespace: str | None = None,
        ascending: bool = False,
    ) -> LineageEventList:
        """Run events with ``after <= eventTime <= before``, newest first, ``page`` of them. ``totalCount``
        counts the events the walk read: exact when the walk reached ``after`` (or its day cap)."""
        upper = before or self.clock()
        lower = after or (upper - timedelta(days=MAX_EVENT_DAYS))
        upper_s, lower_s = _fmt(upper), _fmt(lower)
        wanted = page.offset + page.limit
        found: dict[str, dict[str, Any]] = {}  # eventId -> (time, body)
        times: dict[str, str] = {}
        day = upper.astimezone(UTC).date()
        last_day = lower.astimezone(UTC).date()
        complete_from = upper_s
        while day >= last_day:
            for run in self.lineage.runs_of_day(day.isoformat(), before=None):
                if namespace is not None and run.get("namespace") != namespace:
                    continue
                pk = keys.run_pk(str(run["namespace"]), str(run["job"]), str(run["runId"]))
                for item in self.events.query_partition(pk):
                    event_time = str(item.get("eventTime", ""))
                    if not lower_s <= event_time <= upper_s or item.get("eventId") in found:
                        continue
                    found[str(item["eventId"])] = json.loads(self.events.load_body(item))
                    times[str(item["eventId"])] = event_time
            complete_from = max(lower_s, f"{day.isoformat()}T00:00:00.000000Z")
            known = sum(1 for t in times.values() if t >= complete_from)
            if not ascending and known >= wanted:
                break
            day -= timedelta(days=1)
        ordered = sorted(
            (eid for eid, t in times.items() if t >= complete_from),
            key=lambda eid: (times[eid], eid),
            reverse=not ascending,
        )
        chosen = ordered[page.offset : page.offset + page.limit]
        return LineageEventList(events=[found[e] for e in chosen], total_count=len(ordered))

    # ------------------------------------------------------------------ search
    def search(
        self,
        text: str,
        kind: Literal["JOB", "DATASET"] | None,
        limit: int,
        namespace: str | None = None,
        sort: Literal["UPDATE_AT", "NAME"] = "UPDATE_AT",
    ) -> SearchResultList:
        """Jobs and datasets whose name contains ``text`` (case-insensitive), across namespaces."""
        if namespace is not None:
            spaces = [namespace]
        else:
            spaces = [str(n["name"]) for n in self.lineage.namespaces(limit=MAX_SEARCH_NAMESPACES)]
        results: list[SearchResult] = []
        for space in spaces:
            for code, label in (("J", "JOB"), ("D", "DATASET")):
                if kind is not None and kind != label:
                    continue
                for item in self.lineage.search(space, code, text, limit):
                    name = str(item["name"])
                    node = job_node_id(space, name) if label == "JOB" else dataset_node_id(space, name)
                    results.append(
                        SearchResult(
                            type=label,
                            name=name,
                            namespace=space,
                            updated_at=time_of(item.get("mergedAt")),
                            node_id=node,
                        )
                    )
        if sort == "NAME":
            results.sort(key=lambda r: (r.name, r.namespace))
        else:
            results.sort(key=lambda r: (r.updated_at, r.name), reverse=True)
        return SearchResultList(total_count=len(results[:limit]), results=results[:limit])
