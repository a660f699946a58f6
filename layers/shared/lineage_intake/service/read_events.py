"""Read use cases: the stored raw events, newest first (``/events/lineage``, and ``/events[/{namespace}]``
that ``marquez-python`` 0.50.0 calls), and search (``/search``).

Events: runs are indexed by the UTC hour of their last event (gsi3, written by the merge). Walking hours from
``before`` down, after an hour H is read every event at or after the start of H is known (an event is never
later than its run's last event), so the walk stops as soon as ``offset + limit`` events are known complete.
One Query per hour walked, one per run read (its Events partition); the window is capped
(``DEFAULT_EVENT_WINDOW``, ``MAX_EVENT_WINDOW``; docs/read-api.md "Events").
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
from lineage_intake.store.catalog import CatalogStore

#: Without ``after``, the walk looks back this far; it never walks further than ``MAX_EVENT_WINDOW`` (one
#: gsi3 Query per hour: 744 at most).
DEFAULT_EVENT_WINDOW = timedelta(days=7)
MAX_EVENT_WINDOW = timedelta(days=31)
#: How far past now an event's time may be (producer clocks run ahead) and still be listed.
FUTURE_SKEW = timedelta(days=1)
#: Namespaces a search walks (each is one filtered listing Query per kind).
MAX_SEARCH_NAMESPACES = 100


def _fmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class EventsReader:
    lineage: CatalogStore
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
        counts the events the walk read: exact when the walk reached ``after`` (or its hour cap)."""
        # The UI sends ``before`` at the end of the viewer's day, or far ahead: runs are not indexed in hours past
        # now + FUTURE_SKEW, so the window ends there (else its hourly Queries would all be spent on the future).
        now = self.clock().astimezone(UTC)
        upper = min((before or now).astimezone(UTC), now + FUTURE_SKEW)
        lower = max((after or upper - DEFAULT_EVENT_WINDOW).astimezone(UTC), upper - MAX_EVENT_WINDOW)
        upper_s, lower_s = _fmt(upper), _fmt(lower)
        wanted = page.offset + page.limit
        bodies: dict[str, dict[str, Any]] = {}
        times: dict[str, str] = {}
        hour = upper.replace(minute=0, second=0, microsecond=0)
        complete_from = upper_s
        while hour >= lower.replace(minute=0, second=0, microsecond=0):
            for run in self.lineage.runs_of_hour(hour.strftime("%Y-%m-%dT%H")):
                if namespace is not None and run.get("namespace") != namespace:
                    continue
                pk = str(run.get("eventsPk") or keys.run_pk(str(run["namespace"]), str(run["job"]), str(run["runId"])))
                for item in self.events.query_partition(pk):
                    event_time, event_id = str(item.get("eventTime", "")), str(item.get("eventId", ""))
                    if lower_s <= event_time <= upper_s and event_id not in times:
                        bodies[event_id] = json.loads(self.events.load_body(item))
                        times[event_id] = event_time
            # Every event at or after the start of this hour is known now (none is later than its run's last).
            complete_from = max(lower_s, _fmt(hour))
            if not ascending and sum(1 for t in times.values() if t >= complete_from) >= wanted:
                break
            hour -= timedelta(hours=1)
        ordered = sorted(
            (eid for eid, t in times.items() if t >= complete_from),
            key=lambda eid: (times[eid], eid),
            reverse=not ascending,
        )
        chosen = ordered[page.offset : page.offset + page.limit]
        return LineageEventList(events=[bodies[e] for e in chosen], total_count=len(ordered))

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
