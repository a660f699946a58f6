"""The quarantine: rejected events kept in the Events table for ``RejectedRetentionDays``, for replay.

Layout (docs/operations.md#quarantine):

- one item per rejected event: ``pk = REJECTED#<UTC day>``, ``sk = <receivedAt>#<digest of the body>``,
  ``kind = REJECTED`` (the merge's stream filter passes only RUN/DATASET/JOB, so the merge never sees it),
  TTL ``expiresAt``; the body compressed like accepted bodies, in S3 under ``rejected/`` when large;
- one counter per token and UTC day: ``pk = QUARANTINE-CAP#<tokenId>#<day>``, ``ADD n 1`` only while
  ``n < cap`` (one atomic UpdateItem), so a broken producer cannot fill the table.

A day partition holds at most ``cap`` items per token; queries walk the day partitions of a time range.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lineage_intake.errors import DuplicateItem
from lineage_intake.store.dynamo import dynamo_errors, from_dynamodb, item_size, paginate, to_item
from lineage_intake.store.events import BODY_ENCODING, MAX_INLINE_ITEM_BYTES, EventsStore, encode_body

KIND = "REJECTED"
PK_PREFIX = "REJECTED#"
CAP_PREFIX = "QUARANTINE-CAP#"


def day_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def day_pk(day: str) -> str:
    return f"{PK_PREFIX}{day}"


@dataclass
class QuarantineStore:
    """Writes and reads quarantined events. Shares the Events table, its bucket and its body codec."""

    events: EventsStore

    # ------------------------------------------------------------------ writes
    def take_slot(self, token_id: str, day: str, cap: int, expires_at: int) -> bool:
        """Count one rejected event against the token's daily cap; False when the cap is reached."""
        if cap <= 0:
            return False
        try:
            with dynamo_errors(duplicate_message="quarantine cap reached"):
                self.events.dynamodb.update_item(
                    TableName=self.events.table,
                    Key=to_item({"pk": f"{CAP_PREFIX}{token_id}#{day}", "sk": "-"}),
                    UpdateExpression="ADD n :one SET expiresAt = if_not_exists(expiresAt, :exp)",
                    ConditionExpression="attribute_not_exists(n) OR n < :cap",
                    ExpressionAttributeValues=to_item({":one": 1, ":cap": cap, ":exp": expires_at}),
                )
        except DuplicateItem:  # the condition failed: this token is over its cap for the day
            return False
        return True

    def put(self, attributes: dict[str, Any], body: bytes) -> int:
        """Store one rejected event (overwrites the same body received at the same instant). Returns the
        compressed size."""
        compressed = encode_body(body)
        item = dict(attributes)
        item["bodyEnc"] = BODY_ENCODING
        if item_size(item) + len("body") + len(compressed) > MAX_INLINE_ITEM_BYTES:
            key = f"rejected/{item['pk'].removeprefix(PK_PREFIX)}/{item['digest']}"
            self.events._s3_put(key, compressed)
            item["bodyRef"] = f"s3://{self.events.bucket}/{key}"
        else:
            item["body"] = compressed
        with dynamo_errors():
            self.events.dynamodb.put_item(TableName=self.events.table, Item=to_item(item))
        return len(compressed)

    def mark_replayed(self, pk: str, sk: str, status: str, at: str, event_id: str | None) -> None:
        values: dict[str, Any] = {":s": status, ":at": at}
        expression = "SET replayStatus = :s, replayedAt = :at"
        if event_id:
            values[":e"] = event_id
            expression += ", replayEventId = :e"
        with dynamo_errors():
            self.events.dynamodb.update_item(
                TableName=self.events.table,
                Key=to_item({"pk": pk, "sk": sk}),
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=to_item(values),
            )

    def delete(self, pk: str, sk: str) -> None:
        with dynamo_errors():
            self.events.dynamodb.delete_item(TableName=self.events.table, Key=to_item({"pk": pk, "sk": sk}))

    # ------------------------------------------------------------------ reads
    def list(self, since: datetime, until: datetime) -> Iterator[dict[str, Any]]:
        """Quarantined events received in [since, until], oldest first: one Query per UTC day."""
        day = since.astimezone(UTC).date()
        last = until.astimezone(UTC).date()
        low = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        high = until.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + "~"
        while day <= last:
            pages = paginate(
                self.events.dynamodb,
                "query",
                TableName=self.events.table,
                KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
                ExpressionAttributeValues=to_item({":pk": day_pk(day.isoformat()), ":lo": low, ":hi": high}),
                ConsistentRead=True,
            )
            for raw in pages:
                yield from_dynamodb(raw)
            day += timedelta(days=1)

    def body(self, item: Mapping[str, Any]) -> bytes:
        return self.events.load_body(item)
