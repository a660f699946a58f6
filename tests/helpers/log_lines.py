"""Log lines as the deployed functions and API Gateway write them, for tests of the saved queries.

The function lines are Powertools' JSON envelope around the real ``Outcome.log_fields()`` and
``MergeOutcome.log_fields()``; the access lines are the template's own ``AccessLogSettings.Format`` with its
``$context`` variables filled in, so a renamed field breaks these tests instead of the queries.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from lineage_intake.logs import compact_formatter
from lineage_intake.service.ingest import Outcome
from lineage_intake.service.merge import MergeOutcome
from lineage_intake_tools.local.template import load_template

T0 = datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)
TOKEN_ID = "3f9c0a1b2c3d4e5f"  # a token's public id (never its secret), as every log line names it


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def powertools_line(
    service: str, level: str, message: str, fields: dict[str, Any], when: datetime, request_id: str | None = None
) -> str:
    """One line as a function's Logger writes it: the functions' own formatter (``lineage_intake.logs``)."""
    formatter = compact_formatter()
    formatter.append_keys(service=service, correlation_id=request_id)
    record = logging.LogRecord(service, getattr(logging, level), "app.py", 1, message, None, None, "report")
    record.created, record.msecs = when.timestamp(), when.microsecond // 1000
    record.__dict__.update(fields)
    return formatter.format(record)


def ingest_line(outcome: Outcome, when: datetime, request_id: str, token_id: str | None = None) -> str:
    quarantined = "kept" if outcome.status == "rejected" else None
    fields = replace(outcome, token_id=token_id or TOKEN_ID, quarantined=quarantined).log_fields()
    level = "WARNING" if outcome.status == "rejected" else "INFO"
    return powertools_line("ingest", level, f"event {outcome.status}", fields, when, request_id)


def merge_line(outcome: MergeOutcome, when: datetime) -> str:
    level = {"failed": "ERROR", "awaiting_start": "WARNING"}.get(outcome.status, "INFO")
    return powertools_line("merge", level, f"merge {outcome.status}", outcome.log_fields(), when)


def authorizer_line(when: datetime, request_id: str, reason: str, token_id: str | None = None) -> str:
    fields: dict[str, Any] = {"tokenId": token_id, "outcome": "allow" if reason == "ok" else "deny", "reason": reason}
    fields = {k: v for k, v in fields.items() if v is not None}
    return powertools_line("authorizer", "INFO", "authorization decided", fields, when, request_id)


def _access_format() -> str:
    return str(load_template()["Resources"]["HttpApi"]["Properties"]["AccessLogSettings"]["Format"])


def access_line(when: datetime, request_id: str, status: int, **context: str) -> str:
    """The template's access log format with ``$context`` filled in; unset variables print ``-`` as in AWS."""
    values = {
        "requestId": request_id,
        "requestTime": when.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "routeKey": "POST /api/v1/lineage",
        "status": str(status),
        "responseLatency": "23",
        "identity.sourceIp": "203.0.113.7",
        "identity.userAgent": "openlineage-python/1.24.2",
        "responseLength": "64",
        "protocol": "HTTP/1.1",
    } | context
    line = re.sub(r"\$context\.([\w.]+)", lambda m: values.get(m.group(1), "-"), _access_format())
    return json.dumps(json.loads(line))  # one compact line, and proof that the format is JSON
