"""The local stack's DynamoDB endpoint answers as moto's server does, over keep-alive connections.

``lineage_intake_tools.local.dynamodb_endpoint`` calls moto's own DynamoDB and DynamoDB Streams handlers without
werkzeug and Flask. These tests send the same raw requests to it and to moto's server (one process, one moto
state) and compare status, body and the headers botocore reads (``x-amz-crc32`` is checked by botocore on every
DynamoDB answer); then the errors as botocore parses them, a keep-alive connection, a stop with a connection
open, and the running stack pointing the SDK at it through botocore's per-service endpoint variables.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from lineage_intake_tools.local import moto_lock
from lineage_intake_tools.local.dynamodb_endpoint import DynamoDBEndpoint

from tests.helpers.local_stack import MotoServer, RunningStack

TABLE = "endpoint-test"
#: Headers botocore reads from a DynamoDB answer (request ids and dates differ per answer).
COMPARED_HEADERS = ("content-type", "x-amz-crc32", "x-amzn-errortype")
#: A SigV4 header for us-east-1 and the default account, as boto3 would sign it (moto reads, never checks it).
AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=host;x-amz-date;x-amz-target, Signature=0"
)


@pytest.fixture
def endpoint(moto_server: MotoServer) -> Iterator[DynamoDBEndpoint]:
    was_serialised = moto_lock.is_serialised()
    moto_lock.serialise_dynamodb()  # as the local stack runs it
    moto_server.reset()
    lean = DynamoDBEndpoint().start()
    try:
        yield lean
    finally:
        lean.stop()
        if not was_serialised:
            moto_lock.unserialise_dynamodb()


def raw(url: str, target: str, body: dict[str, Any] | str) -> tuple[int, dict[str, str], bytes]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(
            "POST",
            "/",
            body=body if isinstance(body, str) else json.dumps(body),
            headers={
                "X-Amz-Target": target,
                "Content-Type": "application/x-amz-json-1.0",
                "Authorization": AUTHORIZATION,
            },
        )
        response = connection.getresponse()
        headers = {k.lower(): v for k, v in response.getheaders() if k.lower() in COMPARED_HEADERS}
        return response.status, headers, response.read()
    finally:
        connection.close()


def client(url: str, service: str = "dynamodb") -> Any:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    return session.client(service, endpoint_url=url, config=Config(retries={"mode": "standard", "max_attempts": 1}))


def create_table(dynamodb: Any, stream: bool) -> None:
    """The test table (pk, sk), with a stream of new and old images when ``stream``."""
    streams = {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}} if stream else {}
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
        BillingMode="PAY_PER_REQUEST",
        **streams,
    )


def key(pk: str, sk: str = "x") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


DDB = "DynamoDB_20120810."
STREAMS = "DynamoDBStreams_20120810."
#: (target, body): the operations the pipeline uses, answered and failed, read-only so both endpoints can be
#: asked in turn and must agree (the writes are made once, before, through the lean endpoint).
READS: list[tuple[str, dict[str, Any] | str]] = [
    (DDB + "GetItem", {"TableName": TABLE, "Key": key("a")}),
    (DDB + "GetItem", {"TableName": TABLE, "Key": key("absent")}),
    (DDB + "GetItem", {"TableName": "no-such-table", "Key": key("a")}),
    (
        DDB + "Query",
        {"TableName": TABLE, "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "a"}}},
    ),
    (
        DDB + "Query",
        {"TableName": TABLE, "KeyConditionExpression": "nope = :p", "ExpressionAttributeValues": {":p": {"S": "a"}}},
    ),
    (DDB + "BatchGetItem", {"RequestItems": {TABLE: {"Keys": [key("a"), key("b"), key("absent")]}}}),
    (DDB + "PutItem", {"TableName": TABLE, "Item": key("a"), "ConditionExpression": "attribute_not_exists(pk)"}),
    (
        DDB + "PutItem",
        {
            "TableName": TABLE,
            "Item": key("a"),
            "ConditionExpression": "attribute_not_exists(pk)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        },
    ),
    (
        DDB + "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": TABLE, "Item": key("c")}},
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": key("b"),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        },
    ),
    (DDB + "UpdateItem", {"TableName": TABLE, "Key": key("a"), "UpdateExpression": "SET"}),
    (DDB + "DescribeTable", {"TableName": TABLE}),
    (DDB + "NoSuchOperation", {}),
    (DDB + "GetItem", "{not json"),
    (STREAMS + "ListStreams", {"TableName": TABLE}),
]


def test_the_lean_endpoint_answers_every_request_as_moto_s_server_does(
    endpoint: DynamoDBEndpoint, moto_server: MotoServer
) -> None:
    # Given a table with a stream and two items, written through the lean endpoint
    lean = client(endpoint.url)
    create_table(lean, stream=True)
    lean.put_item(TableName=TABLE, Item={**key("a"), "n": {"N": "1"}})
    lean.put_item(TableName=TABLE, Item=key("b"))
    for target, body in READS:
        # When the same request goes to moto's server and to the lean endpoint
        expected = raw(moto_server.endpoint, target, body)
        answer = raw(endpoint.url, target, body)
        # Then the status, the body and the headers botocore reads are the same (errors included)
        if expected[0] == 500:  # moto's server answers its own failures with Flask's HTML page
            assert answer[0] == 500, target
            continue
        assert answer == expected, target
    # And the answers include the failures the pipeline handles, so the comparison covered them
    statuses = [raw(endpoint.url, target, body)[0] for target, body in READS]
    assert statuses.count(200) >= 6 and statuses.count(400) >= 5


def test_botocore_parses_the_lean_endpoint_s_errors_as_it_parses_moto_s(
    endpoint: DynamoDBEndpoint, moto_server: MotoServer
) -> None:
    # Given the table, and a client of each endpoint
    lean, moto = client(endpoint.url), client(moto_server.endpoint)
    create_table(lean, stream=False)
    lean.put_item(TableName=TABLE, Item=key("taken"))
    transaction = [
        {"Put": {"TableName": TABLE, "Item": key("new")}},
        {"Put": {"TableName": TABLE, "Item": key("taken"), "ConditionExpression": "attribute_not_exists(pk)"}},
    ]
    errors: list[list[Any]] = []
    for sdk in (moto, lean):
        # When each is sent a cancelled transaction, a failed condition and an invalid query
        seen = []
        with pytest.raises(ClientError) as cancelled:
            sdk.transact_write_items(TransactItems=transaction)
        seen.append((cancelled.value.response["Error"]["Code"], cancelled.value.response["CancellationReasons"]))
        with pytest.raises(ClientError) as failed:
            sdk.put_item(TableName=TABLE, Item=key("taken"), ConditionExpression="attribute_not_exists(pk)")
        seen.append(failed.value.response["Error"])
        with pytest.raises(ClientError) as invalid:
            sdk.query(TableName=TABLE, KeyConditionExpression="sk = :s", ExpressionAttributeValues={":s": {"S": "x"}})
        seen.append(invalid.value.response["Error"])
        errors.append(seen)
    # Then botocore reports the same codes, messages and cancellation reasons from both
    assert errors[0] == errors[1]
    assert errors[1][0] == (
        "TransactionCanceledException",
        [{"Code": "None"}, {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}],
    )
    # And the cancelled transaction wrote nothing
    assert "Item" not in lean.get_item(TableName=TABLE, Key=key("new"))


#: An item with every type of attribute value, so that every member of moto's AttributeValue shape is written.
EVERY_TYPE = {
    "s": {"S": " text "},
    "n": {"N": "12.5"},
    "b": {"B": b"\x00\x01binary"},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2"]},
    "bs": {"BS": [b"\x02", b"\x03"]},
    "m": {"M": {"inner": {"L": [{"S": "x"}, {"N": "1"}, {"NULL": True}, {"BOOL": False}]}}},
    "l": {"L": [{"M": {"k": {"S": "v"}}}]},
    "null": {"NULL": True},
    "bool": {"BOOL": True},
}


def answers(url: str) -> list[Any]:
    """What botocore parses from the reads of the pipeline's kinds (items, stream records, table, errors)."""
    dynamodb, streams = client(url), client(url, "dynamodbstreams")
    out: list[Any] = [
        dynamodb.get_item(TableName=TABLE, Key=key("typed")),
        dynamodb.query(
            TableName=TABLE, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "typed"}}
        ),
        dynamodb.batch_get_item(RequestItems={TABLE: {"Keys": [key("typed"), key("a")]}}),
        dynamodb.describe_table(TableName=TABLE),
    ]
    arn = out[-1]["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])
    records.pop("NextShardIterator", None)
    out.append(records)
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": key("typed"), "ConditionExpression": "attribute_not_exists(pk)"}}
            ]
        )
    out.append(cancelled.value.response["CancellationReasons"])
    for answer in out:
        if isinstance(answer, dict):
            answer.pop("ResponseMetadata", None)
    return out


def test_moto_s_answers_are_the_same_with_the_stack_s_shortcuts_in_its_serializer(
    endpoint: DynamoDBEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lineage_intake_tools.local.stack import _shortcut_moto_serializer
    from moto.core import serialize

    # Given moto's serializer as moto ships it (another test of this process may have installed the cache)
    for picker in (serialize.AttributePicker, serialize.XFormedAttributePicker):
        method = vars(picker)["get_possible_keys"]
        monkeypatch.setattr(picker, "get_possible_keys", getattr(method, "__wrapped__", method))
    monkeypatch.setattr(serialize, "get_value", getattr(serialize.get_value, "__wrapped__", serialize.get_value))
    structure = vars(serialize.BaseJSONSerializer)["_serialize_type_structure"]
    monkeypatch.setattr(
        serialize.BaseJSONSerializer, "_serialize_type_structure", getattr(structure, "__wrapped__", structure)
    )
    # And a table with a stream, an item with every type of value and one more item
    lean = client(endpoint.url)
    create_table(lean, stream=True)
    lean.put_item(TableName=TABLE, Item={**key("typed"), **EVERY_TYPE})
    lean.put_item(TableName=TABLE, Item={**key("a"), "n": {"N": "1"}})
    uncached = answers(endpoint.url)
    # When the stack's shortcuts are installed and the same reads are made, twice (the second from the cache)
    _shortcut_moto_serializer()
    assert getattr(vars(serialize.AttributePicker)["get_possible_keys"], "_lineage_intake_cached", False)
    assert getattr(serialize.get_value, "_lineage_intake_cached", False)
    assert getattr(vars(serialize.BaseJSONSerializer)["_serialize_type_structure"], "_lineage_intake_cached", False)
    first, second = answers(endpoint.url), answers(endpoint.url)
    # Then every answer is the same as without it, every type of value included
    assert first == uncached and second == uncached
    assert uncached[0]["Item"]["b"] == {"B": b"\x00\x01binary"} and uncached[0]["Item"]["bs"] == {
        "BS": [b"\x02", b"\x03"]
    }
    assert len(uncached[4]["Records"]) == 2


def test_one_keep_alive_connection_serves_many_requests_and_the_stop_does_not_wait_for_it(
    endpoint: DynamoDBEndpoint,
) -> None:
    # Given one HTTP/1.1 connection to the endpoint
    host, port = endpoint.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = {"X-Amz-Target": DDB + "ListTables", "Content-Type": "application/x-amz-json-1.0"}
    try:
        sockets = set()
        for _ in range(5):
            # When it sends request after request
            connection.request("POST", "/", body="{}", headers=headers)
            response = connection.getresponse()
            # Then each is answered on the same socket
            assert response.status == 200 and json.loads(response.read()) == {"TableNames": []}
            sockets.add(id(connection.sock))
        assert len(sockets) == 1
        # And a stop with the connection still open is prompt
        started = time.monotonic()
        endpoint.stop()
        assert time.monotonic() - started < 1.0
    finally:
        connection.close()


def test_a_request_that_names_no_dynamodb_operation_gets_a_400_that_says_why(endpoint: DynamoDBEndpoint) -> None:
    # When a request's X-Amz-Target is not a DynamoDB or DynamoDB Streams operation
    status, headers, body = raw(endpoint.url, "Nothing.Here", {})
    # Then the answer is a 400 in DynamoDB's JSON error shape that names the header
    assert status == 400 and headers["content-type"] == "application/x-amz-json-1.0"
    assert json.loads(body)["__type"].endswith("#UnknownOperationException")
    assert "X-Amz-Target" in json.loads(body)["message"]


def test_the_stack_points_the_sdk_at_the_endpoint_through_botocore_s_variables(
    local_stack: RunningStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the env file of the running stack, as a shell would export it
    env = local_stack.env
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] != env["AWS_ENDPOINT_URL"]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # When boto3 clients are made with no endpoint argument (as the functions make theirs)
    dynamodb = boto3.client("dynamodb")
    streams = boto3.client("dynamodbstreams")
    # Then DynamoDB and DynamoDB Streams go to the lean endpoint, and it serves the stack's tables and stream
    assert dynamodb.meta.endpoint_url == env["AWS_ENDPOINT_URL_DYNAMODB"]
    assert streams.meta.endpoint_url == env["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"]
    table = dynamodb.describe_table(TableName=env["LINEAGE_EVENTS_TABLE"])["Table"]
    assert streams.describe_stream(StreamArn=table["LatestStreamArn"])["StreamDescription"]["StreamStatus"] == "ENABLED"
