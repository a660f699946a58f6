"""Regenerate the DynamoDB stream batches in events/ for the merge function (run: python events/generate_stream.py).

The records are real: the events are stored by the ingest service into the Events table of template.yaml
(on moto), and the batch is read back from that table's stream, then written the way Lambda hands a stream
batch to a function (``Records`` with ``eventSourceARN``; binary attributes as base64; the creation time in
epoch seconds). The files are committed; the tests and `sam local invoke` read them as they are.

- ``merge-stream-batch.json``: the INSERT records of the START and COMPLETE events of events/ingest-start.json
  and events/ingest-complete.json (one run). The merge re-reads the run's partition, so it expects those two
  events to be stored first: POST the two ingest requests (or invoke the ingest function with them), then
  invoke the merge function with this batch. The run ``my-namespace/my-job/d46e465b-...`` becomes COMPLETE.
- ``merge-stream-poison.json``: the START record of that run, then a poisoned record (the COMPLETE event of the
  Marquez seed's ``food_delivery/etl_menus`` run, whose stored body is corrupt: it cannot be decoded), then
  the COMPLETE record of the good run. Each NewImage is the item as stored, so storing the NewImages (put_item)
  recreates the table that the batch describes. The merge merges the good run at its START (which reads the
  stored COMPLETE), fails the poisoned record and stops there: it reports the poisoned record's sequence number
  and the COMPLETE's after it in ``batchItemFailures``, so that Lambda retries from the poisoned record.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "layers" / "shared"))

CORPUS = ROOT / "tests" / "fixtures" / "corpus"
RECEIVED_AT = 1795219200.0  # requestContext.timeEpoch of the ingest requests in events/
CORRUPT_BODY = b"\x78\x9c this is not a zlib stream"


def lambda_value(value: dict[str, Any]) -> dict[str, Any]:
    """A low-level attribute value as it appears in a Lambda event (JSON: binary is base64)."""
    ((kind, inner),) = value.items()
    if kind == "B":
        return {"B": base64.b64encode(inner).decode("ascii")}
    if kind == "M":
        return {"M": {k: lambda_value(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [lambda_value(v) for v in inner]}
    if kind == "BS":
        return {"BS": [base64.b64encode(v).decode("ascii") for v in inner]}
    return {kind: inner}


def lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A DynamoDB Streams GetRecords record as Lambda delivers it to a function.

    moto's random record ids and wall-clock times are replaced by values derived from the record, so that
    regenerating the files gives the same bytes."""
    stream = record["dynamodb"]
    keys = json.dumps(stream["Keys"], sort_keys=True).encode()
    out: dict[str, Any] = {
        "eventID": hashlib.md5(keys, usedforsecurity=False).hexdigest(),
        "eventName": record["eventName"],
        "eventVersion": "1.1",
        "eventSource": record["eventSource"],
        "awsRegion": record["awsRegion"],
        "dynamodb": {
            "ApproximateCreationDateTime": int(RECEIVED_AT),
            "Keys": {k: lambda_value(v) for k, v in stream["Keys"].items()},
            "NewImage": {k: lambda_value(v) for k, v in stream.get("NewImage", {}).items()},
            "SequenceNumber": stream["SequenceNumber"],
            "SizeBytes": stream["SizeBytes"],
            "StreamViewType": stream["StreamViewType"],
        },
        "eventSourceARN": stream_arn,
    }
    return out


def read_stream(session: Any, table: str) -> tuple[str, list[dict[str, Any]]]:
    from botocore.config import Config

    ddb = session.client("dynamodb")
    # boto3 sends DynamoDB Streams calls to account-based endpoints, which moto does not route.
    streams = session.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"))
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
        records += streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"]
    return arn, records


def write(name: str, event: dict[str, Any]) -> None:
    (HERE / name).write_text(json.dumps(event, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main() -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ[key] = value
    os.environ.pop("AWS_ENDPOINT_URL", None)

    import boto3
    from lineage_intake.config import IngestSettings
    from lineage_intake.principal import Principal
    from lineage_intake.service.ingest import IngestService
    from lineage_intake.store.events import EventsStore
    from lineage_intake_tools.local.template import Stack
    from moto import mock_aws

    fluentd = CORPUS / "openlineage" / "events" / "proxy-fluentd" / "docker"
    start = json.loads((fluentd / "test-start.json").read_text(encoding="utf-8"))
    complete = json.loads((fluentd / "test-complete.json").read_text(encoding="utf-8"))
    seed = json.loads((CORPUS / "marquez" / "docker" / "metadata.json").read_text(encoding="utf-8"))
    poisoned = next(e for e in seed if e["job"]["name"] == "etl_menus" and e["eventType"] == "COMPLETE")

    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        stack = Stack.from_template(prefix="test")
        stack.create(session)
        env = stack.function("IngestFunction").environment
        table, bucket = env["EVENTS_TABLE"], env["BODY_BUCKET"]
        store = EventsStore(session.client("dynamodb"), table, bucket, lambda: session.client("s3"))
        service = IngestService(store, IngestSettings.from_env(env), lambda _outcome: None, clock=lambda: RECEIVED_AT)
        principal = Principal("tok_sample", frozenset({"my-namespace", "default", "food_delivery"}))
        for event in (start, poisoned, complete):
            outcome = service.store_event(event, principal)
            assert outcome.status == "accepted", outcome
        arn, records = read_stream(session, table)

    arn = arn.rsplit("/", 1)[0] + "/2026-11-21T00:00:00.000"  # moto labels streams with the wall clock
    converted = [lambda_record(r, arn) for r in records]
    assert [r["eventName"] for r in converted] == ["INSERT"] * 3
    good = [converted[0], converted[2]]
    write("merge-stream-batch.json", {"Records": good})

    poison = json.loads(json.dumps(converted[1]))
    poison["dynamodb"]["NewImage"]["body"] = {"B": base64.b64encode(CORRUPT_BODY).decode("ascii")}
    write("merge-stream-poison.json", {"Records": [converted[0], poison, converted[2]]})


if __name__ == "__main__":
    main()
