"""A dataset's latest data-quality report: one small item per dataset, ``D#<dataset>`` / ``DQ``.

Written only for runs that carry ``dataQualityAssertions`` or ``dataQualityMetrics`` (no write for any other
run), as a Put conditional on a newer ``<lastEventTime>#<runId>``, so an older run merged late never replaces
a newer report. A separate item, not attributes of the dataset item: an update is billed on the whole item,
and the dataset item (schema, symlinks) is the bigger one. Why and what it costs: docs/read-api.md "Data quality".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lineage_intake import keys
from lineage_intake.errors import DuplicateItem
from lineage_intake.lineage import Ref, content_hash
from lineage_intake.merge import MergedRun
from lineage_intake.store.dynamo import approximate_size, dynamo_errors, newer_or_changed, to_item
from lineage_intake.store.lineage_items import MAX_ITEM_BYTES

QUALITY_SK = "DQ"
#: What the read side projects of the item (``store.catalog``).
QUALITY_ATTRIBUTES = ("facets", "runId", "job", "reportedAt", "facetsTruncated")


def quality_item(run: MergedRun, ref: Ref, found: Mapping[str, Any]) -> dict[str, Any]:
    """The item for one dataset of ``run``; facets left out (``facetsTruncated``) if they would not fit."""
    item: dict[str, Any] = {
        "pk": keys.dataset_key(ref.namespace, ref.name),
        "sk": QUALITY_SK,
        "type": "dataQuality",
        "runId": run.run_id,
        "job": {"namespace": run.namespace, "name": run.job},
        "reportedAt": run.last_event_time,
        "qualityVersion": f"{run.last_event_time}#{run.run_id}",
        "contentHash": content_hash(dict(found))[:16],
        "facets": {name: dict(facet) for name, facet in sorted(found.items())},
    }
    if approximate_size(item) > MAX_ITEM_BYTES:
        item["facets"], item["facetsTruncated"] = {}, True
    return item


def write_quality(dynamodb: Any, table: str, run: MergedRun) -> tuple[int, int]:
    """Put each reported dataset's item unless a newer report is stored: (written, skipped as older)."""
    written = skipped = 0
    for ref, found in run.data_quality:
        item = quality_item(run, ref, found)
        condition, names, values = newer_or_changed(
            "qualityVersion", "contentHash", item["qualityVersion"], item["contentHash"]
        )
        try:
            with dynamo_errors():
                dynamodb.put_item(
                    TableName=table,
                    Item=to_item(item),
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
            written += 1
        except DuplicateItem:
            skipped += 1  # a newer run's report (or this same one) is stored
    return written, skipped
