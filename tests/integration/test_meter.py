"""The DynamoDB capacity meter (bench/meter.py) and the cost model (bench/cost.py).

The meter is checked on moto with tables built from template.yaml. Every expected number is worked out from
DynamoDB's documented rules (see the module docstring of bench/meter.py), in the comment next to it.
"""

from __future__ import annotations

import copy
import io
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger
from lineage_intake_tools.local.template import Stack

from bench.cost import (
    LOW_RATE,
    PLATFORM_LOG_BYTES_PER_INVOCATION,
    FunctionLoad,
    LogBytes,
    Profile,
    StreamMapping,
    Traffic,
    authorizer_invocations_per_event,
    breakdown,
    floor_usd,
    memory_sizes,
    report,
)
from bench.meter import Meter, item_size, number_size

KEYS = {"pk": {"S": "p#1"}, "sk": {"S": "s#1"}}  # 2+3 + 2+3 = 10 bytes


def item(size: int, **extra: Any) -> dict[str, Any]:
    """An item of exactly ``size`` bytes: the keys, ``extra`` attributes and a ``pad`` string filling the rest."""
    base = {**KEYS, **extra}
    pad = size - item_size(base) - len("pad")
    assert pad >= 0
    built = {**base, "pad": {"S": "x" * pad}}
    assert item_size(built) == size
    return built


def set_attribute(ddb: Any, table: str, name: str, value: dict[str, Any]) -> None:
    """UpdateItem of the item at ``KEYS``, setting one attribute."""
    ddb.update_item(
        TableName=table,
        Key=KEYS,
        UpdateExpression="SET #n = :v",
        ExpressionAttributeNames={"#n": name},
        ExpressionAttributeValues={":v": value},
    )


def store_in_gsi1(meter: Meter, ddb: Any, table: str, size: int) -> None:
    """Store, unmetered, an item of ``size`` bytes at ``KEYS`` that has gsi1's keys."""
    with meter.disabled():
        ddb.put_item(TableName=table, Item=item(size, gsi1pk={"S": "job#a"}, gsi1sk={"S": "2026"}))


@pytest.fixture
def ddb(aws: boto3.Session) -> Any:
    return aws.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def template_stack() -> Stack:
    return Stack.from_template(prefix="meter")


@pytest.fixture
def events_table(ddb: Any, template_stack: Stack) -> str:
    definition = template_stack.table_definition("EventsTable")
    ddb.create_table(**definition)
    return str(definition["TableName"])


@pytest.fixture
def lineage_table(ddb: Any, template_stack: Stack) -> str:
    definition = template_stack.table_definition("LineageTable")
    ddb.create_table(**definition)
    return str(definition["TableName"])


@pytest.fixture
def keys_only_table(ddb: Any, template_stack: Stack) -> str:
    """The Lineage table's shape, with gsi1 projecting only the keys."""
    definition = copy.deepcopy(template_stack.table_definition("LineageTable"))
    definition["TableName"] += "-keys-only"
    for gsi in definition["GlobalSecondaryIndexes"]:
        gsi["Projection"] = {"ProjectionType": "KEYS_ONLY"}
    ddb.create_table(**definition)
    return str(definition["TableName"])


@pytest.fixture
def all_table(ddb: Any, template_stack: Stack) -> str:
    """The Lineage table's shape, with every index projecting ALL attributes (the template projects INCLUDE)."""
    definition = copy.deepcopy(template_stack.table_definition("LineageTable"))
    definition["TableName"] += "-all"
    for gsi in definition["GlobalSecondaryIndexes"]:
        gsi["Projection"] = {"ProjectionType": "ALL"}
    ddb.create_table(**definition)
    return str(definition["TableName"])


@pytest.fixture
def meter(ddb: Any) -> Meter:
    return Meter().attach(ddb)


# ---------------------------------------------------------------------------------------------- item sizes
def test_string_and_binary_sizes_count_utf8_bytes_and_raw_bytes() -> None:
    # Given a string with a two-byte character and a binary of 5 bytes
    # When their item's size is computed
    size = item_size({"név": {"S": "é"}, "b": {"B": b"\x00\x01\x02\x03\x04"}})
    # Then each name and string counts UTF-8 bytes: (4 + 2) + (1 + 5)
    assert size == 12


def test_number_size_is_one_byte_per_two_significant_digits_plus_one() -> None:
    # Given numbers with leading and trailing zeroes, signs, decimals and exponents
    # When their sizes are computed
    # Then zeroes at either end are trimmed and the digits are counted in pairs, rounded up, plus one
    assert number_size("12345") == 4  # 5 digits -> 3 + 1
    assert number_size("0012300") == 3  # "123" -> 2 + 1
    assert number_size("-1.5") == 2  # "15" -> 1 + 1
    assert number_size("0.0001") == 2  # "1" -> 1 + 1
    assert number_size("1.25E+10") == 3  # "125" -> 2 + 1
    assert number_size("0") == 1


def test_lists_and_maps_cost_three_bytes_plus_one_per_element_and_sets_only_their_elements() -> None:
    # Given a list of two strings, a map of one number and a string set
    attrs = {
        "l": {"L": [{"S": "ab"}, {"BOOL": True}]},
        "m": {"M": {"k": {"N": "7"}, "z": {"NULL": True}}},
        "s": {"SS": ["abc", "de"]},
    }
    # When the item's size is computed
    # Then l = 1 + 3 + (1+2) + (1+1); m = 1 + 3 + (1+1+2) + (1+1+1); s = 1 + 3 + 2
    assert item_size(attrs) == 9 + 11 + 6


# ---------------------------------------------------------------------------------------------- writes
def test_a_900_byte_put_is_one_write_unit_and_a_1100_byte_put_two(meter: Meter, ddb: Any, events_table: str) -> None:
    # Given the Events table from template.yaml
    # When a 900-byte item and then a 1,100-byte item (another key) are put
    before = meter.snapshot()
    ddb.put_item(TableName=events_table, Item=item(900))
    small = meter.delta(before)
    ddb.put_item(TableName=events_table, Item=item(1100, sk={"S": "s#2"}))
    # Then the first costs ceil(900/1024) = 1 and the second ceil(1100/1024) = 2
    assert small.wru[events_table] == 1
    assert meter.delta(before).wru[events_table] == 3
    assert meter.usage.requests["PutItem"] == 2


def test_every_attribute_counts_including_a_binary_body(meter: Meter, ddb: Any, events_table: str) -> None:
    # Given an item of 1,000 bytes without its binary body, and a 100-byte body
    attrs = item(1000)
    attrs["bodyEnc"] = {"B": b"z" * 100}
    # When it is put
    ddb.put_item(TableName=events_table, Item=attrs)
    # Then the body's name and bytes count too: 1,000 + 7 + 100 = 1,107 bytes -> 2 units
    assert meter.usage.wru[events_table] == 2


def test_an_update_that_grows_an_item_is_billed_on_the_larger_size(meter: Meter, ddb: Any, events_table: str) -> None:
    # Given a stored 900-byte item, put before the meter counted anything
    with meter.disabled():
        ddb.put_item(TableName=events_table, Item=item(900))
    # When an update adds 1,200 bytes (an attribute "more" of 4 + 1,196 bytes)
    set_attribute(ddb, events_table, "more", {"S": "y" * 1196})
    # Then it costs ceil(2,100/1024) = 3 units, and the put made while disabled costs nothing
    assert meter.usage.wru[events_table] == 3
    assert meter.usage.requests == {"UpdateItem": 1}


def test_a_put_that_shrinks_an_item_is_billed_on_the_old_size(meter: Meter, ddb: Any, events_table: str) -> None:
    # Given a stored 2,100-byte item
    with meter.disabled():
        ddb.put_item(TableName=events_table, Item=item(2100))
    # When a 500-byte item replaces it
    ddb.put_item(TableName=events_table, Item=item(500))
    # Then it costs ceil(max(2,100, 500)/1024) = 3 units
    assert meter.usage.wru[events_table] == 3


def test_a_delete_is_billed_on_the_deleted_item_size(meter: Meter, ddb: Any, events_table: str) -> None:
    # Given a stored 1,100-byte item
    with meter.disabled():
        ddb.put_item(TableName=events_table, Item=item(1100))
    # When it is deleted, and then deleted again when it is gone
    ddb.delete_item(TableName=events_table, Key=KEYS)
    ddb.delete_item(TableName=events_table, Key=KEYS)
    # Then the first delete costs 2 units and the second the minimum of 1
    assert meter.usage.wru[events_table] == 3


def test_a_failed_conditional_put_costs_the_existing_item_size(meter: Meter, ddb: Any, events_table: str) -> None:
    # Given a stored 1,500-byte item
    with meter.disabled():
        ddb.put_item(TableName=events_table, Item=item(1500))
    # When a 300-byte put on the same key fails its condition
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.put_item(TableName=events_table, Item=item(300), ConditionExpression="attribute_not_exists(pk)")
    # Then it still costs the existing item's size, ceil(1,500/1024) = 2 units
    assert meter.usage.wru[events_table] == 2
    assert meter.usage.requests["PutItem"] == 1


def test_a_transaction_doubles_each_item_including_a_condition_check(meter: Meter, ddb: Any, events_table: str) -> None:
    # Given a stored 1,100-byte item that a transaction checks
    checked = {"pk": {"S": "p#9"}, "sk": {"S": "s#9"}}
    with meter.disabled():
        ddb.put_item(TableName=events_table, Item={**item(1100), **checked})
    # When a transaction puts a 900-byte item and checks the stored one
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": events_table, "Item": item(900)}},
            {
                "ConditionCheck": {
                    "TableName": events_table,
                    "Key": checked,
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
        ]
    )
    # Then the put costs 2 x 1 and the check 2 x ceil(1,100/1024) = 4: 6 units
    assert meter.usage.wru[events_table] == 6


def test_a_batch_write_is_billed_per_item(meter: Meter, ddb: Any, events_table: str) -> None:
    # Given three items of 500, 1,100 and 3,000 bytes
    sizes = (500, 1100, 3000)
    requests = [{"PutRequest": {"Item": item(size, sk={"S": f"s#{size}"})}} for size in sizes]
    # When they are written in one BatchWriteItem
    ddb.batch_write_item(RequestItems={events_table: requests})
    # Then each item is rounded up on its own: 1 + 2 + 3 = 6 units, in one request
    assert meter.usage.wru[events_table] == 6
    assert meter.usage.requests == {"BatchWriteItem": 1}


# ---------------------------------------------------------------------------------------------- index writes
def test_an_item_entering_a_keys_only_index_adds_one_write(meter: Meter, ddb: Any, keys_only_table: str) -> None:
    # Given the Lineage table's shape with KEYS_ONLY indexes, and a 900-byte item with gsi1's keys only
    attrs = item(900, gsi1pk={"S": "job#a"}, gsi1sk={"S": "2026"})
    # When it is put
    ddb.put_item(TableName=keys_only_table, Item=attrs)
    # Then the table write costs 1 and gsi1 a put of the keys (a few bytes) 1; gsi2 is sparse and costs 0
    assert meter.usage.wru == {keys_only_table: 1, f"{keys_only_table}/gsi1": 1}


def test_an_update_that_leaves_a_keys_only_index_unchanged_adds_nothing(
    meter: Meter, ddb: Any, keys_only_table: str
) -> None:
    # Given a stored 900-byte item in a KEYS_ONLY gsi1
    store_in_gsi1(meter, ddb, keys_only_table, 900)
    # When an attribute that the index does not project changes
    set_attribute(ddb, keys_only_table, "pad", {"S": "short"})
    # Then only the table write is billed: ceil(900/1024) = 1
    assert meter.usage.wru == {keys_only_table: 1}


def test_changing_an_index_key_is_a_delete_and_a_put_in_the_index(meter: Meter, ddb: Any, all_table: str) -> None:
    # Given a stored 1,100-byte item in gsi1, which projects ALL attributes
    store_in_gsi1(meter, ddb, all_table, 1100)
    # When its gsi1 sort key changes (same length, so the size stays 1,100 bytes)
    set_attribute(ddb, all_table, "gsi1sk", {"S": "2027"})
    # Then the table write costs 2 and gsi1 deletes the old entry (2) and puts the new one (2)
    assert meter.usage.wru == {all_table: 2, f"{all_table}/gsi1": 4}


def test_changing_a_projected_attribute_is_one_index_write_of_the_larger_size(
    meter: Meter, ddb: Any, all_table: str
) -> None:
    # Given a stored 900-byte item in gsi1, which projects ALL attributes
    store_in_gsi1(meter, ddb, all_table, 900)
    # When a non-key attribute grows it to 1,100 bytes ("more": 4 + 196 bytes)
    set_attribute(ddb, all_table, "more", {"S": "y" * 196})
    # Then the table and gsi1 each write ceil(1,100/1024) = 2 units; gsi2 (not holding the item) nothing
    assert meter.usage.wru == {all_table: 2, f"{all_table}/gsi1": 2}


def test_the_template_s_include_projection_bills_only_the_listed_attributes(
    meter: Meter, ddb: Any, lineage_table: str
) -> None:
    # Given a stored 1,100-byte item in the Lineage table's gsi1 (INCLUDE, from template.yaml)
    store_in_gsi1(meter, ddb, lineage_table, 1100)
    # When its gsi1 sort key changes: the index entry (keys only, here: "pad" is not listed) moves
    set_attribute(ddb, lineage_table, "gsi1sk", {"S": "2027"})
    # Then the table write costs 2 and gsi1 deletes a small entry (1) and puts one (1)
    assert meter.usage.wru == {lineage_table: 2, f"{lineage_table}/gsi1": 2}


def test_an_item_leaving_a_sparse_index_costs_a_delete(meter: Meter, ddb: Any, lineage_table: str) -> None:
    # Given a stored 900-byte item in gsi2 (runs awaiting their start)
    with meter.disabled():
        ddb.put_item(TableName=lineage_table, Item=item(900, gsi2pk={"S": "awaiting"}, gsi2sk={"S": "r1"}))
    # When its gsi2 keys are removed
    ddb.update_item(TableName=lineage_table, Key=KEYS, UpdateExpression="REMOVE gsi2pk, gsi2sk")
    # Then the table write costs 1 and gsi2 one delete of the old projected item (ALL, 900 bytes): 1
    assert meter.usage.wru == {lineage_table: 1, f"{lineage_table}/gsi2": 1}


# ---------------------------------------------------------------------------------------------- reads
def put_ten_items_of_1kb(meter: Meter, ddb: Any, table: str) -> None:
    with meter.disabled():
        for i in range(10):
            ddb.put_item(TableName=table, Item=item(1024, sk={"S": f"s#{i:02}"}))


def test_a_query_over_ten_1kb_items_costs_3_units_consistent_and_1_5_eventually(
    meter: Meter, ddb: Any, events_table: str
) -> None:
    # Given ten 1,024-byte items in one partition
    put_ten_items_of_1kb(meter, ddb, events_table)
    query = {
        "TableName": events_table,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": "p#1"}},
    }
    # When the partition is queried strongly consistent, then eventually consistent
    before = meter.snapshot()
    assert len(ddb.query(**query, ConsistentRead=True)["Items"]) == 10
    strong = meter.delta(before)
    ddb.query(**query)
    # Then the first reads ceil(10 KB / 4 KB) = 3 units and the second half that, 1.5
    assert strong.rru[events_table] == 3
    assert meter.delta(before).rru[events_table] == 4.5
    assert meter.usage.requests == {"Query": 2}


def test_a_filtered_and_projected_query_is_billed_on_the_full_items_it_read(
    meter: Meter, ddb: Any, events_table: str
) -> None:
    # Given ten 1,024-byte items in one partition
    put_ten_items_of_1kb(meter, ddb, events_table)
    # When a consistent query filters all of them out and projects only the sort key
    found = ddb.query(
        TableName=events_table,
        KeyConditionExpression="pk = :p",
        FilterExpression="#pad = :none",
        ProjectionExpression="sk",
        ExpressionAttributeNames={"#pad": "pad"},
        ExpressionAttributeValues={":p": {"S": "p#1"}, ":none": {"S": "nothing"}},
        ConsistentRead=True,
    )
    # Then nothing is returned, yet the ten full items read are billed: 3 units
    assert found["Items"] == []
    assert meter.usage.rru[events_table] == 3


def test_get_item_is_billed_per_4kb_and_at_least_half_a_unit_when_missing(
    meter: Meter, ddb: Any, events_table: str
) -> None:
    # Given a stored 5,000-byte item
    with meter.disabled():
        ddb.put_item(TableName=events_table, Item=item(5000))
    missing = {"pk": {"S": "p#1"}, "sk": {"S": "none"}}
    # When it is read strongly consistent, eventually consistent, and a missing key eventually consistent
    ddb.get_item(TableName=events_table, Key=KEYS, ConsistentRead=True)
    ddb.get_item(TableName=events_table, Key=KEYS, ProjectionExpression="sk")
    ddb.get_item(TableName=events_table, Key=missing)
    # Then they cost ceil(5,000/4,096) = 2, half of that (1, projection or not), and the minimum 0.5
    assert meter.usage.rru[events_table] == 2 + 1 + 0.5


def test_batch_get_and_transact_get_are_billed_per_item(meter: Meter, ddb: Any, events_table: str) -> None:
    # Given ten 1,024-byte items
    put_ten_items_of_1kb(meter, ddb, events_table)
    keys = [{"pk": {"S": "p#1"}, "sk": {"S": f"s#{i:02}"}} for i in range(3)]
    # When three are read by BatchGetItem (eventually consistent) and two by TransactGetItems
    ddb.batch_get_item(RequestItems={events_table: {"Keys": keys}})
    before = meter.snapshot()
    ddb.transact_get_items(TransactItems=[{"Get": {"TableName": events_table, "Key": k}} for k in keys[:2]])
    # Then the batch costs 3 x 0.5 and the transaction 2 x (2 x 1)
    assert meter.delta(before).rru[events_table] == 4
    assert meter.usage.rru[events_table] == 1.5 + 4


def test_a_detached_client_and_a_malformed_call_are_not_metered(
    meter: Meter, ddb: Any, aws: boto3.Session, events_table: str
) -> None:
    # Given a second client the meter is not attached to
    other = aws.client("dynamodb", region_name="us-east-1")
    # When that client writes, and the metered client makes a call botocore rejects
    other.put_item(TableName=events_table, Item=item(900))
    with pytest.raises(Exception, match="TableName"):
        ddb.put_item(Item=item(900))
    # Then nothing is counted
    assert meter.usage.total_wru == 0
    assert not meter.usage.requests


def test_one_meter_counts_every_client_it_is_attached_to(
    meter: Meter, ddb: Any, aws: boto3.Session, events_table: str
) -> None:
    # Given a second client, attached to the same meter
    other = aws.client("dynamodb", region_name="us-east-1")
    meter.attach(other)
    # When each client puts a 1,100-byte item under its own key
    ddb.put_item(TableName=events_table, Item=item(1100))
    other.put_item(TableName=events_table, Item=item(1100, sk={"S": "s#2"}))
    # Then both are counted: 2 + 2 units in two requests
    assert meter.usage.wru == {events_table: 4}
    assert meter.usage.requests == {"PutItem": 2}


# ---------------------------------------------------------------------------------------------- cost model
def test_memory_sizes_come_from_the_template_with_the_globals_default() -> None:
    # Given template.yaml (Globals MemorySize 512; the merge function sets 1024)
    # When the memory sizes are read
    sizes = memory_sizes()
    # Then every function has one, and the merge function's own overrides the default
    assert sizes["MergeFunction"] == 1024
    assert sizes["IngestFunction"] == 512
    assert set(sizes) >= {"IngestFunction", "AuthorizerFunction", "MergeFunction"}


def test_the_authorizer_cache_costs_each_token_one_invocation_per_ttl_however_the_events_are_sent() -> None:
    # Given 100 events/s from 10 tokens (10 events/s each) and a 60 s cache
    busy = Traffic(events_per_second=100, tokens=10)
    # When events come one per request, then 100 per request (one request every 10 s per token)
    # Then each token costs one invocation a minute either way: 10/60 invocations/s over 100 events/s
    assert authorizer_invocations_per_event(1, busy) == pytest.approx(1 / 600)
    assert authorizer_invocations_per_event(100, busy) == pytest.approx(1 / 600)
    # And with the cache off every request invokes it: 1 per event, 1/100 per batched event
    assert authorizer_invocations_per_event(1, busy, ttl_seconds=0) == 1
    assert authorizer_invocations_per_event(100, busy, ttl_seconds=0) == pytest.approx(0.01)
    # And at a low rate (one token, an event every 100 s) no request finds a cached decision
    assert authorizer_invocations_per_event(1, LOW_RATE) == pytest.approx(1)


def test_merge_invocations_come_from_the_template_s_stream_mapping_not_from_the_post_style() -> None:
    # Given the template's mapping (BatchSize 100, a 1 s window, ParallelizationFactor 10)
    mapping = StreamMapping.of()
    assert (mapping.batch_size, mapping.window_seconds, mapping.parallelization) == (100, 1.0, 10)
    # When 100 events/s reach one shard: a window holds 100 records, split over 10 parallel batches of 10
    assert mapping.invocations_per_event(Traffic(events_per_second=100)) == pytest.approx(0.1)
    # Then a faster shard fills whole batches, and a slow one gets a batch per record
    assert mapping.invocations_per_event(Traffic(events_per_second=5000)) == pytest.approx(0.01)
    assert mapping.invocations_per_event(LOW_RATE) == 1


def test_the_floor_is_the_requests_and_the_layout_s_write_units_only() -> None:
    # Given single POSTs: one request, ingest, authorizer (1/600) and merge (0.1) invocations, 9 WRU measured
    profile = Profile(
        name="single POSTs",
        http_requests=1,
        functions=[
            FunctionLoad("IngestFunction", 512, 1, 7),
            FunctionLoad("AuthorizerFunction", 512, 1 / 600, 1 / 600),
            FunctionLoad("MergeFunction", 1024, 0.1, 30),
        ],
        wru=9,
        rru=2,
        log_bytes=800,
    )
    # When its floor is taken at 2.5 WRU per event
    floor = floor_usd(profile, wru=2.5)
    # Then it is $1.00 + (1 + 1/600 + 0.1) x $0.20 + 2.5 x $0.625, nothing for compute, reads or logs
    assert floor["API Gateway HTTP API requests"] == pytest.approx(1.0)
    assert floor["Lambda requests"] == pytest.approx((1 + 1 / 600 + 0.1) * 0.20)
    assert floor["DynamoDB writes"] == pytest.approx(1.5625)
    assert any(line.startswith("  floor of this layout: $2.7828") for line in report(profile, 2.5, floor_wru=2.5))


def test_the_cost_breakdown_prices_each_metered_quantity_per_million_events() -> None:
    # Given one request, a 512 MB function invoked once for 9.2 ms (billed 10 ms), 2 WRU, 1 RRU, 1 KiB of logs
    profile = Profile(
        name="single POSTs",
        http_requests=1,
        functions=[FunctionLoad("IngestFunction", 512, invocations=1, ms=9.2)],
        wru=2,
        rru=1,
        log_bytes=1024,
    )
    # When it is priced
    costs = breakdown(profile)
    # Then each line is its quantity times the list price, per million events
    assert costs["API Gateway HTTP API requests"] == pytest.approx(1.00)
    assert costs["Lambda requests"] == pytest.approx(0.20)
    assert costs["Lambda compute IngestFunction"] == pytest.approx(0.010 * 0.5 * 0.0000133334 * 1e6)
    assert costs["DynamoDB writes"] == pytest.approx(1.25)
    assert costs["DynamoDB reads"] == pytest.approx(0.125)
    # and the logs are the handler's 1,024 bytes plus Lambda's own lines of the one invocation
    assert costs["CloudWatch Logs"] == pytest.approx((1024 + PLATFORM_LOG_BYTES_PER_INVOCATION) * 1e6 / 1024**3 * 0.50)


def test_batched_invocations_round_each_invocation_up_to_a_millisecond() -> None:
    # Given a 1024 MB function invoked once per 100 events, 0.123 ms per event (12.3 ms per invocation)
    load = FunctionLoad("MergeFunction", 1024, invocations=0.01, ms=0.123)
    # When its billed time is computed
    # Then each invocation is billed 13 ms, 0.13 ms per event
    assert load.billed_ms_per_event() == pytest.approx(0.13)


def test_the_report_says_missed_when_the_total_is_over_the_target() -> None:
    # Given a profile costing $1.00 (requests) + $1.25 (writes) + $0.20 (one invocation, no time, no logs) = $2.45
    profile = Profile(
        name="single POSTs",
        http_requests=1,
        functions=[FunctionLoad("IngestFunction", 512, 1, 0)],
        wru=2,
        platform_log_bytes_per_invocation=0,
    )
    # When it is reported against $2.50 and against $1.50
    met, missed = report(profile, target_usd=2.50), report(profile, target_usd=1.50)
    # Then the total line says MET, then MISSED
    assert met[-1] == "  total: $2.4500 per million events (target <= $2.50): MET"
    assert missed[-1].endswith("(target <= $1.50): MISSED")


def test_lambda_platform_lines_are_counted_per_invocation() -> None:
    # Given Lambda's START, END and REPORT lines in text format with X-Ray tracing
    # When they are measured
    # Then they come to a few hundred bytes per invocation, which the cost model adds per invocation
    assert 250 < PLATFORM_LOG_BYTES_PER_INVOCATION < 450
    profile = Profile(name="p", http_requests=1, functions=[FunctionLoad("IngestFunction", 512, 0.5, 0)])
    assert breakdown(profile)["CloudWatch Logs"] == pytest.approx(
        0.5 * PLATFORM_LOG_BYTES_PER_INVOCATION * 1e6 / 1024**3 * 0.50
    )


def test_log_bytes_counts_a_logger_created_before_it_and_printed_metrics() -> None:
    # Given a Powertools logger created (bound to stdout) before the capture starts
    logger = Logger(service="meter-test")
    # When it logs one line and something is printed, as Metrics prints its EMF blob
    with LogBytes() as logs:
        log_once(logger, "héllo")
        print("x" * 10)
    # Then every byte written is counted: the logger's JSON line (UTF-8) and the 11 printed bytes
    assert logs.bytes == len(json_line_of(logger, "héllo")) + 11
    # and once it is closed, stdout is the real one again: a new capture sees only its own output
    with LogBytes() as again:
        print("x" * 10)
    assert again.bytes == 11


def log_once(logger: Logger, message: str) -> None:
    logger.info(message)  # one call site, so the "location" field has the same length each time


def json_line_of(logger: Logger, message: str) -> bytes:
    """The bytes ``logger`` writes for ``message``, captured from its own handler."""
    buffer = io.StringIO()
    handler = logger.registered_handler
    previous = handler.setStream(buffer)
    try:
        log_once(logger, message)
    finally:
        handler.setStream(previous)
    return buffer.getvalue().encode("utf-8")
