"""The event log: what happened to the events a producer sent (``lineage-intake events list|show``).

Sources (docs/operations.md#the-event-log):

- accepted events are the Events table's items;
- rejected events are the quarantine's items (with their replay, if any);
- a duplicate writes nothing, so duplicates are only in ingest's log lines: the CLI reads them through the
  logs (``lineage-intake logs``), not here;
- the merge that used an event is the run's record in the Lineage table (state, merge time, version).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lineage_intake.errors import InvalidArgument, NotFound
from lineage_intake.lineage import normalize_run_id
from lineage_intake.store.eventlog import EventLogReader
from lineage_intake.store.lineage import LineageStore
from lineage_intake.store.quarantine import QuarantineStore

_VIEW_KEYS = (
    "namespace",
    "job",
    "dataset",
    "runId",
    "eventType",
    "eventTime",
    "producer",
    "tokenId",
    "receivedAt",
    "size",
)


@dataclass(frozen=True)
class Filters:
    namespace: str | None = None
    job: str | None = None
    run_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def keep(self, view: Mapping[str, Any]) -> bool:
        if self.namespace is not None and view.get("namespace") != self.namespace:
            return False
        if self.job is not None and view.get("job") != self.job:
            return False
        if self.run_id is not None and normalize_run_id(str(view.get("runId") or "")) != self.run_id:
            return False
        received = str(view.get("receivedAt") or "")
        if self.since is not None and received < _iso(self.since):
            return False
        # Whole seconds on both sides: an event received during the ``until`` second is inside the window.
        return not (self.until is not None and received[:19] > _iso(self.until))


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def accepted_view(item: Mapping[str, Any]) -> dict[str, Any]:
    view = {"status": "accepted", "eventId": item.get("eventId"), "kind": item.get("kind")}
    view |= {k: item[k] for k in _VIEW_KEYS if k in item}
    return view


def rejected_view(item: Mapping[str, Any]) -> dict[str, Any]:
    view = {"status": "rejected", "id": f"{item.get('receivedAt')}#{item.get('digest')}", "reason": item.get("reason")}
    view |= {k: item[k] for k in _VIEW_KEYS if k in item}
    view["detail"] = item.get("detail")
    view["errors"] = item.get("errors", [])
    view["replay"] = (
        {"status": item["replayStatus"], "at": item.get("replayedAt"), "eventId": item.get("replayEventId")}
        if "replayStatus" in item
        else None
    )
    return view


@dataclass
class EventLog:
    reader: EventLogReader
    quarantine: QuarantineStore
    lineage: LineageStore | None = None

    def rejected_items(self, filters: Filters, since: datetime, until: datetime) -> Iterator[dict[str, Any]]:
        """The quarantine's items that pass the filters (what replay takes)."""
        for item in self.quarantine.list(since, until):
            if filters.keep(item):
                yield item

    def rejected(self, filters: Filters, since: datetime, until: datetime) -> list[dict[str, Any]]:
        return [rejected_view(i) for i in self.rejected_items(filters, since, until)]

    def accepted(self, filters: Filters) -> list[dict[str, Any]]:
        """With namespace, job and run: one Query; otherwise a filtered Scan of the Events table."""
        if filters.run_id is not None:
            if filters.namespace is None or filters.job is None:
                raise InvalidArgument("--run needs --namespace and --job (a run id is unique within its job)")
            items: Iterable[dict[str, Any]] = self.reader.run_events(filters.namespace, filters.job, filters.run_id)
        else:
            equals = {k: v for k, v in (("namespace", filters.namespace), ("job", filters.job)) if v is not None}
            items = self.reader.scan(equals)
        views = [self._accepted_view(i) for i in items if filters.keep(i)]
        return sorted(views, key=lambda v: str(v.get("receivedAt")))

    def show(self, event_id: str) -> dict[str, Any]:
        """One event by its id (an accepted event's ``eventId`` or a rejected one's ``id``): body and fate."""
        if "#" in event_id:  # a quarantine id: receivedAt#digest
            received, _, digest = event_id.partition("#")
            moment = datetime.fromisoformat(received.replace("Z", "+00:00"))
            for item in self.quarantine.list(moment, moment):
                if item.get("digest") == digest:
                    return {**rejected_view(item), "body": json.loads(self.quarantine.body(item))}
            raise NotFound(f"no quarantined event {event_id!r} (kept for RejectedRetentionDays)")
        found = next(iter(self.reader.scan({"eventId": event_id})), None)
        if found is None:
            raise NotFound(
                f"no stored event {event_id!r}: not accepted, expired (EventRetentionDays), or a rejected event's "
                "id (RECEIVEDAT#DIGEST, see `events list --status rejected`)"
            )
        view = accepted_view(found)
        view["body"] = json.loads(self.reader.events.load_body(found))
        view.setdefault("producer", view["body"].get("producer"))
        view["merge"] = self._merge_of(found)
        return view

    def _accepted_view(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """Items written since zlib-d2 keep the producer only in the body (an item costs per KB)."""
        view = accepted_view(item)
        if "producer" not in view:
            view["producer"] = json.loads(self.reader.events.load_body(item)).get("producer")
        return view

    def _merge_of(self, item: Mapping[str, Any]) -> dict[str, Any] | None:
        """The run record the merge wrote from this run's events (None before the run is merged)."""
        if self.lineage is None or item.get("kind") != "RUN":
            return None
        run = self.lineage.get_run(str(item["namespace"]), str(item["job"]), str(item["runId"]))
        if run is None:
            return {"status": "not merged", "detail": "no run record yet (pending START or terminal event, or DLQ)"}
        return {
            "status": "merged",
            "state": run.get("state"),
            "mergedAt": run.get("mergedAt"),
            "mergeVersion": run.get("mergeVersion"),
        }
