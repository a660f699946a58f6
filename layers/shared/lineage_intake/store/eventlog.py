"""Operator reads of the Events table: accepted events by run (a Query) or by attributes (a Scan).

The table is keyed for the merge (one partition per run, job or dataset), not for browsing, so listing without
a run, and finding an event by its id alone, scan the table with a filter. That is an operator's occasional
read, priced in docs/operations.md#the-event-log; ingest and the merge never scan.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from lineage_intake import keys
from lineage_intake.store.dynamo import from_dynamodb, paginate, to_item
from lineage_intake.store.events import EventsStore, with_key_fields

EVENT_KINDS = ("RUN", "DATASET", "JOB")


@dataclass
class EventLogReader:
    events: EventsStore

    def run_events(self, namespace: str, job: str, run_id: str) -> Iterator[dict[str, Any]]:
        yield from self.events.query_partition(keys.run_pk(namespace, job, run_id))

    def scan(self, equals: Mapping[str, str], kinds: tuple[str, ...] = EVENT_KINDS) -> Iterator[dict[str, Any]]:
        """Items whose ``kind`` is one of ``kinds`` and whose attributes equal ``equals`` (a filtered Scan).
        ``eventId`` is matched in the sort key (``eventTime#eventId``): items since zlib-d2 keep it only there."""
        names = {"#kind": "kind"}
        values: dict[str, Any] = {f":k{i}": kind for i, kind in enumerate(kinds)}
        clauses = [f"#kind IN ({', '.join(f':k{i}' for i in range(len(kinds)))})"]
        for i, (name, value) in enumerate(sorted(equals.items())):
            values[f":a{i}"] = value
            if name == "eventId":
                names[f"#a{i}"] = "sk"
                clauses.append(f"contains(#a{i}, :a{i})")
                continue
            names[f"#a{i}"] = name
            clauses.append(f"#a{i} = :a{i}")
        pages = paginate(
            self.events.dynamodb,
            "scan",
            TableName=self.events.table,
            FilterExpression=" AND ".join(clauses),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item(values),
        )
        for raw in pages:
            item = with_key_fields(from_dynamodb(raw))
            if item.get("eventId") == equals.get("eventId", item.get("eventId")):
                yield item
