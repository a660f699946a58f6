"""The merge cost bench's client without HTTP (bench/memory_dynamodb.py) against boto3 on moto.

The bench's 10,000-event streaming figures come from it, so it must store the same items and bill the same units
(bench/meter.py) as the moto the rest of the suite trusts, including paging and failed conditions.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from bench.memory_dynamodb import MemoryDynamoDB
from bench.meter import Meter, Usage
from tests.helpers.aws import TEST_STACK, use_fake_aws_credentials
from tests.helpers.streaming import OnePerBatch, flink_events

RUN_ID = "5e0c6d1a-3b2f-4c8e-9a7d-1f2e3d4c5b6a"
EVENTS_TABLE = TEST_STACK.physical_name("EventsTable")
LINEAGE_TABLE = TEST_STACK.physical_name("LineageTable")


def _scan(client: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=table):
        items += page["Items"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def _streaming_run(memory: bool, count: int) -> tuple[Usage, list[dict[str, Any]], list[dict[str, Any]]]:
    """A streaming run of ``count`` events in a fresh moto account; the meter's usage and both tables' items."""
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        TEST_STACK.create(session)
        ddb = session.client("dynamodb")
        meter = Meter()
        client: Any = MemoryDynamoDB(meter, partitions=[EVENTS_TABLE]) if memory else ddb
        if not memory:
            meter.attach(ddb)
        rig = OnePerBatch(session, TEST_STACK, client, meter)
        for event in flink_events(RUN_ID, count):
            assert rig.deliver(event).status == "streaming"
        with meter.disabled():
            lineage = _scan(ddb, LINEAGE_TABLE)
            if memory:  # the Events table's partitions are the client's own
                events = sorted(
                    (i for p in client.partitions[EVENTS_TABLE].values() for i in p.values()),
                    key=lambda i: (i["pk"]["S"], i["sk"]["S"]),
                )
            else:
                events = _scan(ddb, EVENTS_TABLE)
        return meter.usage, events, lineage


def test_a_streaming_run_through_the_in_memory_client_stores_the_same_items_and_bills_the_same_units_as_moto(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given fake credentials and a Flink run of 150 events (37 checkpoints, the job's first lineage on event 1)
    use_fake_aws_credentials(monkeypatch)
    # When it is delivered one event per batch through boto3 on moto, and again through the in-memory client
    moto_usage, moto_events, moto_lineage = _streaming_run(memory=False, count=150)
    memory_usage, memory_events, memory_lineage = _streaming_run(memory=True, count=150)
    # Then every table and index is billed the same units, by the same requests
    assert dict(memory_usage.wru) == dict(moto_usage.wru) and dict(memory_usage.rru) == dict(moto_usage.rru)
    assert memory_usage.requests == moto_usage.requests and moto_usage.requests["Query"] >= 300
    # And both tables hold the same items (the run, its checkpoint, the job, its edges and datasets)
    assert len(moto_events) == 150 and memory_events == moto_events
    assert len(moto_lineage) >= 5 and memory_lineage == moto_lineage


def test_its_query_pages_by_limit_and_its_failed_conditions_are_boto3s_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the tables of the template and the in-memory client, metered
    use_fake_aws_credentials(monkeypatch)
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        TEST_STACK.create(session)
        meter = Meter()
        client = MemoryDynamoDB(meter, partitions=[EVENTS_TABLE])
        for n in range(5):
            item = {"pk": {"S": "RUN#a"}, "sk": {"S": f"2026-01-0{n + 1}#e{n}"}, "body": {"B": b"x" * 100}}
            client.put_item(TableName=EVENTS_TABLE, Item=item, ConditionExpression="attribute_not_exists(pk)")
        # When a Query from the 2nd sort key on is paged 2 items at a time
        pages = client.get_paginator("query").paginate(
            TableName=EVENTS_TABLE,
            KeyConditionExpression="pk = :pk AND sk >= :since",
            ExpressionAttributeValues={":pk": {"S": "RUN#a"}, ":since": {"S": "2026-01-02"}},
            ConsistentRead=True,
            PaginationConfig={"PageSize": 2},
        )
        # Then it reads the 4 items from there in 2 pages, each billed (1 RRU, consistent)
        before = meter.snapshot()
        assert [[i["sk"]["S"][:10] for i in page["Items"]] for page in pages] == [
            ["2026-01-02", "2026-01-03"],
            ["2026-01-04", "2026-01-05"],
        ]
        assert meter.delta(before).rru[EVENTS_TABLE] == 2.0
        # And a duplicate event and a stale conditional put on the Lineage table raise boto3's error, billed
        duplicate = {"pk": {"S": "RUN#a"}, "sk": {"S": "2026-01-01#e0"}}
        with pytest.raises(ClientError) as failed:
            client.put_item(TableName=EVENTS_TABLE, Item=duplicate, ConditionExpression="attribute_not_exists(pk)")
        assert failed.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
        run = {"pk": {"S": "R#x"}, "sk": {"S": "J#y"}, "mergeVersion": {"S": "0000000002#b"}}
        client.put_item(TableName=LINEAGE_TABLE, Item=run)
        before = meter.snapshot()
        with pytest.raises(ClientError) as stale:
            client.put_item(
                TableName=LINEAGE_TABLE,
                Item=run | {"mergeVersion": {"S": "0000000001#a"}},
                ConditionExpression="attribute_not_exists(#v) OR #v < :v",
                ExpressionAttributeNames={"#v": "mergeVersion"},
                ExpressionAttributeValues={":v": {"S": "0000000001#a"}},
            )
        assert stale.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
        assert meter.delta(before).wru[LINEAGE_TABLE] == 1.0  # a failed condition bills the existing item
        stored = client.get_item(TableName=LINEAGE_TABLE, Key={"pk": {"S": "R#x"}, "sk": {"S": "J#y"}})["Item"]
        assert stored["mergeVersion"] == {"S": "0000000002#b"}
