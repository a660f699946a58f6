"""The ingest function on moto, driven by the API Gateway requests in events/ and the corpus events."""

from __future__ import annotations

import base64
import copy
import gzip
import json
import logging
import os
import uuid
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from lineage_intake import keys
from lineage_intake.store.events import MAX_INLINE_ITEM_BYTES, EventsStore

from tests.helpers.aws import TEST_STACK, load_handler
from tests.helpers.corpus import INVALID_FIXTURES, concrete_corpus_events, corpus_json, event_file
from tests.helpers.eventlog import is_quarantine_item, structured_lines, table_items

EVENTS_TABLE = TEST_STACK.physical_name("EventsTable")
BUCKET = TEST_STACK.physical_name("BodyBucket")


def call(app: ModuleType, event: dict[str, Any], context: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    answer = app.handler(event, context)
    return answer["statusCode"], json.loads(answer["body"]), answer.get("headers") or {}


def request_for(event: Any, *, path: str = "/api/v1/lineage", gzipped: bool = False, **over: Any) -> dict[str, Any]:
    """An HTTP API request shaped like events/ingest-start.json, carrying ``event`` as its body."""
    req = copy.deepcopy(event_file("ingest-start.json"))
    raw = json.dumps(event).encode()
    if gzipped:
        req["body"], req["isBase64Encoded"] = base64.b64encode(gzip.compress(raw)).decode(), True
        req["headers"]["content-encoding"] = "gzip"
    else:
        req["body"], req["isBase64Encoded"] = raw.decode(), False
    req["rawPath"] = req["requestContext"]["http"]["path"] = path
    req["routeKey"] = req["requestContext"]["routeKey"] = f"POST {path}"
    connections = over.pop("connections", None)
    if connections is not None:
        req["requestContext"]["authorizer"]["lambda"]["connections"] = json.dumps(connections)
    req.update(over)
    return req


def all_items(session: boto3.Session) -> list[dict[str, Any]]:
    """The stored events (the quarantine's items of rejected events are in tests/integration/test_quarantine.py)."""
    return [i for i in table_items(session, EVENTS_TABLE) if not is_quarantine_item(i)]


def stream_records(session: boto3.Session) -> list[dict[str, Any]]:
    ddb = session.client("dynamodb")
    # boto3 sends DynamoDB Streams calls to account-based endpoints, which moto does not route.
    streams = session.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"))
    arn = ddb.describe_table(TableName=EVENTS_TABLE)["Table"]["LatestStreamArn"]
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records += streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    return records


def test_a_start_event_from_events_is_accepted_and_stored(ingest, lambda_context, aws) -> None:
    # When the START request of events/ is handled
    status, body, _ = call(ingest, event_file("ingest-start.json"), lambda_context)
    # Then it is accepted and stored as one item keyed by (namespace, job, runId)
    assert status == 200
    assert body["status"] == "accepted"
    items = all_items(aws)
    assert len(items) == 1
    item = items[0]
    assert item["pk"] == keys.run_pk("my-namespace", "my-job", "d46e465b-d358-4d32-83d4-df660ff614dd")
    assert item["sk"] == f"2019-05-09T19:49:24.201361Z#{body['eventId']}"
    # And what the sort key or the body already holds is not paid for twice (docs/merge.md#storage-cost)
    assert not {"eventId", "eventTime", "producer"} & set(item)
    assert item["bodyEnc"] == "zlib-d2"
    assert (item["eventType"], item["namespace"], item["job"]) == ("START", "my-namespace", "my-job")
    assert item["kind"] == "RUN"
    assert item["tokenId"] == "tok_sample"
    assert item["expiresAt"] > 0


def test_the_stored_body_is_compressed_and_holds_the_event_verbatim(ingest, lambda_context, aws) -> None:
    call(ingest, event_file("ingest-complete.json"), lambda_context)
    (item,) = all_items(aws)
    store = EventsStore(aws.client("dynamodb"), EVENTS_TABLE, BUCKET, lambda: aws.client("s3"))
    original = json.loads(event_file("ingest-complete.json")["body"])
    assert json.loads(store.load_body(item)) == original
    assert len(item["body"]) < item["size"]


def test_a_gzip_body_in_the_http_api_shape_is_accepted(ingest, lambda_context, aws) -> None:
    request = event_file("ingest-gzip.json")
    assert request["isBase64Encoded"] is True
    assert request["headers"]["content-encoding"] == "gzip"
    status, body, _ = call(ingest, request, lambda_context)
    assert (status, body["status"]) == (200, "accepted")


def test_a_gzip_body_without_content_encoding_is_accepted(ingest, lambda_context, aws) -> None:
    request = event_file("ingest-gzip-no-header.json")
    assert "content-encoding" not in request["headers"]
    status, body, _ = call(ingest, request, lambda_context)
    assert (status, body["status"]) == (200, "accepted")


def test_a_retried_delivery_is_a_duplicate_with_no_second_item_and_no_second_stream_record(
    ingest, lambda_context, aws
) -> None:
    # Given an accepted event
    first = call(ingest, event_file("ingest-complete.json"), lambda_context)
    # When the client retries it, plain and then gzip-compressed
    second = call(ingest, event_file("ingest-complete.json"), lambda_context)
    third = call(ingest, event_file("ingest-gzip.json"), lambda_context)
    # Then the retries are duplicates of the same stored event
    assert first[1]["status"] == "accepted"
    assert second[1] == third[1] == {**first[1], "status": "duplicate"}
    assert len(all_items(aws)) == 1
    inserts = [r for r in stream_records(aws) if r["eventName"] == "INSERT"]
    assert len(inserts) == 1


def test_the_same_event_with_reordered_keys_and_white_space_is_a_duplicate(ingest, lambda_context, aws) -> None:
    event = json.loads(event_file("ingest-start.json")["body"])
    call(ingest, request_for(event), lambda_context)
    reordered = dict(reversed(list(event.items())))
    request = request_for(reordered)
    request["body"] = json.dumps(reordered, indent=4)
    assert call(ingest, request, lambda_context)[1]["status"] == "duplicate"


def test_an_invalid_event_gets_400_with_field_paths_and_nothing_is_stored(ingest, lambda_context, aws) -> None:
    status, body, _ = call(ingest, event_file("ingest-invalid.json"), lambda_context)
    assert status == 400
    assert body["error"] == "invalid_event"
    assert body["errors"] == [{"path": "run.runId", "message": "Field required"}]
    assert "run.runId" in body["message"]
    assert all_items(aws) == []


def test_a_namespace_outside_the_tokens_connections_gets_403_and_nothing_is_stored(ingest, lambda_context, aws) -> None:
    status, body, _ = call(ingest, event_file("ingest-forbidden.json"), lambda_context)
    assert status == 403
    assert "'my-namespace' is not writable with this token" in body["message"]
    assert all_items(aws) == []


@pytest.mark.parametrize("path", ["/api/v1/lineage", "/api/v1/lineage/batch"])
def test_a_read_only_token_gets_403_naming_the_write_scope_and_nothing_is_stored(
    path, ingest, lambda_context, aws
) -> None:
    # Given an event the token's connection could hold, sent with a token that has only the read scope
    event = event_file("ingest-start.json")
    body = json.loads(event["body"])
    request = request_for([body] if path.endswith("batch") else body, path=path)
    request["requestContext"]["authorizer"]["lambda"]["scopes"] = '["read"]'
    # When ingest handles it
    status, answer, _ = call(ingest, request, lambda_context)
    # Then it is refused as a whole with the missing scope named, and nothing is stored
    assert status == 403
    assert "lacks the 'write' scope" in answer["message"]
    assert all_items(aws) == []


def test_a_request_without_authorizer_context_fails_closed(ingest, lambda_context, aws) -> None:
    request = event_file("ingest-start.json")
    del request["requestContext"]["authorizer"]
    status, _, _ = call(ingest, request, lambda_context)
    assert status == 403
    assert all_items(aws) == []


def test_a_batch_stores_each_event_on_its_own(ingest, lambda_context, aws) -> None:
    status, body, _ = call(ingest, event_file("ingest-batch.json"), lambda_context)
    assert status == 200
    assert body["status"] == "success"
    assert body["summary"]["received"] == body["summary"]["accepted"] == 2
    assert len(all_items(aws)) == 2


def test_a_batch_with_bad_events_is_a_partial_success_naming_each_failure(ingest, lambda_context, aws) -> None:
    good = json.loads(event_file("ingest-start.json")["body"])
    other_namespace = copy.deepcopy(good)
    other_namespace["job"]["namespace"] = "elsewhere"
    batch = [good, corpus_json("openlineage/events/proxy-fluentd/event_no_run_id.json"), other_namespace, good]
    status, body, _ = call(ingest, request_for(batch, path="/api/v1/lineage/batch"), lambda_context)
    assert status == 200
    assert body["status"] == "partial_success"
    assert body["summary"] == {
        "received": 4,
        "accepted": 1,
        "duplicate": 1,
        "failed": 2,
        "successful": 2,
        "retriable": 0,
        "non_retriable": 2,
    }
    failures = {f["index"]: f for f in body["failed_events"]}
    assert failures[1]["errors"] == [{"path": "run.runId", "message": "Field required"}]
    assert "not writable" in failures[2]["reason"]
    assert not failures[1]["retriable"]


def test_a_batch_over_the_cap_gets_413(ingest, lambda_context, aws, stack, monkeypatch) -> None:
    app = load_handler(stack, "IngestFunction", monkeypatch, MAX_BATCH_EVENTS="3")
    event = json.loads(event_file("ingest-start.json")["body"])
    status, body, _ = call(app, request_for([event] * 4, path="/api/v1/lineage/batch"), lambda_context)
    assert status == 413
    assert "limit of 3" in body["message"]
    assert all_items(aws) == []


def test_an_array_posted_to_the_single_event_route_is_pointed_to_the_batch_route(ingest, lambda_context, aws) -> None:
    status, body, _ = call(ingest, request_for([{"a": 1}]), lambda_context)
    assert status == 400
    assert "/api/v1/lineage/batch" in body["message"]


def test_a_body_over_the_decompressed_cap_gets_413(stack, monkeypatch, lambda_context, aws) -> None:
    app = load_handler(stack, "IngestFunction", monkeypatch, MAX_BODY_BYTES="2048")
    event = json.loads(event_file("ingest-start.json")["body"])
    event["job"]["facets"] = {"big": {"blob": "x" * 10_000}}
    status, body, _ = call(app, request_for(event, gzipped=True), lambda_context)
    assert status == 413
    assert "2048" in body["message"]


def test_an_unsupported_content_type_gets_415(ingest, lambda_context, aws) -> None:
    request = event_file("ingest-start.json")
    request["headers"]["content-type"] = "text/csv"
    status, body, _ = call(ingest, request, lambda_context)
    assert status == 415
    assert "text/csv" in body["message"]


def test_a_body_that_is_not_json_gets_400(ingest, lambda_context, aws) -> None:
    request = event_file("ingest-start.json")
    request["body"] = "{oops"
    status, body, _ = call(ingest, request, lambda_context)
    assert status == 400
    assert body["error"] == "malformed_body"


@pytest.mark.parametrize(("name", "event"), concrete_corpus_events(), ids=[n for n, _ in concrete_corpus_events()])
def test_every_concrete_corpus_event_gets_the_answer_it_deserves(name, event, ingest, lambda_context, aws) -> None:
    namespaces = [event.get("job", {}).get("namespace", "none")]
    status, body, _ = call(ingest, request_for(event, connections=namespaces), lambda_context)
    if name in INVALID_FIXTURES:
        assert status == 400
        assert INVALID_FIXTURES[name] in [e["path"] for e in body["errors"]]
    else:
        assert status == 200, body
        assert body["status"] == "accepted"


def test_five_kilobyte_names_with_separators_and_unicode_are_stored_under_distinct_keys(
    ingest, lambda_context, aws
) -> None:
    base = json.loads(event_file("ingest-start.json")["body"])
    pairs = [("a#b", "c"), ("a", "b#c"), ("ns|/🚀" + "x" * 5 * 1024, "job/ü#|" + "y" * 5 * 1024)]
    for namespace, job in pairs:
        event = copy.deepcopy(base)
        event["job"] = {"namespace": namespace, "name": job}
        status, body, _ = call(ingest, request_for(event, connections=[namespace]), lambda_context)
        assert status == 200, body
    items = all_items(aws)
    assert len({i["pk"] for i in items}) == 3
    assert {(i["namespace"], i["job"]) for i in items} == set(pairs)


def test_an_oversized_body_goes_to_s3_first_and_the_item_points_to_it(ingest, lambda_context, aws) -> None:
    event = json.loads(event_file("ingest-start.json")["body"])
    event["run"]["facets"] = {"noise": {"data": base64.b64encode(os.urandom(450_000)).decode()}}
    status, body, _ = call(ingest, request_for(event, gzipped=True), lambda_context)
    assert status == 200
    (item,) = all_items(aws)
    assert "body" not in item
    assert item["bodyRef"] == f"s3://{BUCKET}/bodies/{body['eventId']}"
    store = EventsStore(aws.client("dynamodb"), EVENTS_TABLE, BUCKET, lambda: aws.client("s3"))
    assert json.loads(store.load_body(item)) == event
    assert item["size"] > MAX_INLINE_ITEM_BYTES


class FailingDynamoDB:
    """Delegates to a real client but fails PutItem with the given error code."""

    def __init__(self, real: Any, code: str) -> None:
        self.real, self.code = real, code

    def put_item(self, **kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": self.code, "Message": "simulated"}}, "PutItem")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.mark.parametrize(
    "code", ["ProvisionedThroughputExceededException", "ThrottlingException", "InternalServerError"]
)
def test_throttled_storage_gets_503_with_retry_after_never_429(code, ingest, lambda_context, aws) -> None:
    service = ingest.service()
    service.store.dynamodb = FailingDynamoDB(service.store.dynamodb, code)
    status, body, headers = call(ingest, event_file("ingest-start.json"), lambda_context)
    assert status == 503
    assert headers["Retry-After"] == "2"
    assert body["error"] == "storage_unavailable"


def test_a_batch_hitting_throttled_storage_gets_503_so_the_client_retries_it_whole(ingest, lambda_context, aws) -> None:
    service = ingest.service()
    service.store.dynamodb = FailingDynamoDB(service.store.dynamodb, "ThrottlingException")
    status, body, headers = call(ingest, event_file("ingest-batch.json"), lambda_context)
    assert status == 503
    assert "Retry-After" in headers
    assert body["summary"]["retriable"] == 2
    assert all(f["retriable"] for f in body["failed_events"])


def test_when_the_item_write_fails_after_the_s3_put_no_item_points_anywhere(ingest, lambda_context, aws) -> None:
    # S3 first, then DynamoDB: a failure in between leaves an orphan object, never a dangling pointer.
    service = ingest.service()
    service.store.dynamodb = FailingDynamoDB(service.store.dynamodb, "ThrottlingException")
    event = json.loads(event_file("ingest-start.json")["body"])
    event["run"]["facets"] = {"noise": {"data": base64.b64encode(os.urandom(450_000)).decode()}}
    status, _, _ = call(ingest, request_for(event), lambda_context)
    assert status == 503
    assert all_items(aws) == []
    assert aws.client("s3").list_objects_v2(Bucket=BUCKET)["KeyCount"] == 1


def test_an_unexpected_storage_error_is_a_500_bug_not_a_client_error(ingest, lambda_context, aws) -> None:
    service = ingest.service()
    service.store.dynamodb = FailingDynamoDB(service.store.dynamodb, "ValidationException")
    with pytest.raises(ClientError):
        ingest.handler(event_file("ingest-start.json"), lambda_context)


def test_each_event_writes_one_structured_log_line_with_its_identity(caplog, ingest, lambda_context, aws) -> None:
    caplog.set_level(logging.INFO)
    call(ingest, event_file("ingest-batch.json"), lambda_context)
    events = [line for line in structured_lines(ingest, caplog) if line["message"].startswith("event ")]
    assert len(events) == 2
    for line in events:
        assert line["outcome"] == "accepted"
        assert line["namespace"] == "my-namespace"
        assert line["job"] == "my-job"
        assert line["runId"] == "d46e465b-d358-4d32-83d4-df660ff614dd"
        assert line["correlation_id"] == "req-batch"
        assert {"eventType", "producer", "bytes", "eventId"} <= line.keys()
        # And it is compact: none of the Lambda context keys CloudWatch already has, no source location
        assert not {"function_name", "function_arn", "function_memory_size", "function_request_id"} & line.keys()
        assert not {"cold_start", "location"} & line.keys()


def test_a_rejected_event_logs_its_reason_and_field_paths(caplog, ingest, lambda_context, aws) -> None:
    caplog.set_level(logging.INFO)
    call(ingest, event_file("ingest-invalid.json"), lambda_context)
    (line,) = [line for line in structured_lines(ingest, caplog) if line["message"] == "event rejected"]
    assert line["reason"] == "invalid_event"
    assert line["errors"] == [{"path": "run.runId", "message": "Field required"}]


def test_metrics_count_accepted_duplicate_and_rejected_events(capsys, ingest, lambda_context, aws) -> None:
    call(ingest, event_file("ingest-start.json"), lambda_context)
    call(ingest, event_file("ingest-start.json"), lambda_context)
    call(ingest, event_file("ingest-invalid.json"), lambda_context)
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    names = [m["Name"] for blob in blobs for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
    assert {"EventsAccepted", "EventsDuplicate", "EventsRejected", "EventsRejectedByReason"} <= set(names)
    reasons = [blob.get("reason") for blob in blobs if "reason" in blob]
    assert reasons == ["invalid_event"]


def test_the_openapi_schema_describes_both_routes(ingest) -> None:
    schema = ingest.app.get_openapi_schema()
    assert {"/api/v1/lineage", "/api/v1/lineage/batch"} <= set(schema.paths)


def test_a_missing_environment_variable_fails_the_cold_start_with_its_name(stack, monkeypatch) -> None:
    monkeypatch.delenv("EVENTS_TABLE", raising=False)
    from lineage_intake.config import ConfigurationError, IngestSettings

    with pytest.raises(ConfigurationError, match="EVENTS_TABLE"):
        IngestSettings.from_env()


def test_a_non_uuid_run_id_is_stored_under_its_normalized_uuid(ingest, lambda_context, aws) -> None:
    event = json.loads(event_file("ingest-start.json")["body"])
    event["run"]["runId"] = "airflow-dag-run-2024-01-01"
    call(ingest, request_for(event), lambda_context)
    (item,) = all_items(aws)
    assert uuid.UUID(item["runId"]).version == 3
    assert item["runIdRaw"] == "airflow-dag-run-2024-01-01"


def test_logs_never_hold_the_authorization_header(capsys, caplog, ingest, lambda_context, aws) -> None:
    caplog.set_level(logging.DEBUG)
    request = event_file("ingest-start.json")
    request["headers"]["authorization"] = "Bearer li_secret_token_value"
    call(ingest, request, lambda_context)
    rendered = json.dumps(structured_lines(ingest, caplog))
    assert "li_secret_token_value" not in capsys.readouterr().out + caplog.text + rendered
