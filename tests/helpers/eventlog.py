"""Builders for the event log's tests: the Events table's items split into events and quarantine items."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import boto3
import pytest
from lineage_intake.store.dynamo import from_dynamodb
from lineage_intake.store.quarantine import CAP_PREFIX, PK_PREFIX


def table_items(session: boto3.Session, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in session.client("dynamodb").get_paginator("scan").paginate(TableName=table):
        items += [from_dynamodb(i) for i in page["Items"]]
    return items


def is_quarantine_item(item: dict[str, Any]) -> bool:
    return str(item["pk"]).startswith((PK_PREFIX, CAP_PREFIX))


def quarantined(session: boto3.Session, table: str) -> list[dict[str, Any]]:
    """The quarantined events (not the cap counters), oldest first."""
    items = [i for i in table_items(session, table) if str(i["pk"]).startswith(PK_PREFIX)]
    return sorted(items, key=lambda i: str(i["sk"]))


def cap_counters(session: boto3.Session, table: str) -> list[dict[str, Any]]:
    return [i for i in table_items(session, table) if str(i["pk"]).startswith(CAP_PREFIX)]


def structured_lines(app: ModuleType, caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The ingest log records of the run, rendered by the function's own Powertools JSON formatter."""
    formatter = app.logger.registered_formatter
    return [json.loads(formatter.format(record)) for record in caplog.records if record.name == "ingest"]


def stream_failure_message(stream_arn: str, shard_id: str, first: str, last: str, size: int) -> dict[str, Any]:
    """What Lambda sends to a stream source's on-failure destination: the batch's coordinates, not its records
    (https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html)."""
    return {
        "requestContext": {
            "requestId": "316aa6d0-8154-4d52-a2a3-000000000000",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:test-MergeFunction",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 6,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2026-11-21T10:00:00.000Z",
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": first,
            "endSequenceNumber": last,
            "approximateArrivalOfFirstRecord": "2026-11-21T09:59:58Z",
            "approximateArrivalOfLastRecord": "2026-11-21T09:59:59Z",
            "batchSize": size,
            "streamArn": stream_arn,
        },
    }


class CliRunner:
    """``lineage-intake`` through its own entry point, on moto, with the environment the env file would give."""

    def __init__(self, capsys: pytest.CaptureFixture[str], env: dict[str, str]) -> None:
        self.capsys = capsys
        self.env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
        self.env |= env

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        import lineage_intake_tools.cli as cli

        self.capsys.readouterr()
        code = cli.main(list(argv), env=self.env)
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *argv: str) -> Any:
        code, out, err = self(*argv, "--json")
        assert code == 0, err
        return json.loads(out)


def stack_env(stack: Any) -> dict[str, str]:
    """The ``LINEAGE_*`` variables of a moto stack built from the template (as the local stack's env file)."""
    return {
        "LINEAGE_EVENTS_TABLE": stack.physical_name("EventsTable"),
        "LINEAGE_LINEAGE_TABLE": stack.physical_name("LineageTable"),
        "LINEAGE_BODY_BUCKET": stack.physical_name("BodyBucket"),
        "LINEAGE_TOKENS_TABLE": stack.physical_name("TokensTable"),
        "LINEAGE_CONNECTIONS_TABLE": stack.physical_name("ConnectionsTable"),
    }
