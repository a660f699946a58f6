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
