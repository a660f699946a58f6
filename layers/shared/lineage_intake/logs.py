"""The functions' Powertools Logger: compact JSON lines, because CloudWatch Logs bills every byte ingested.

Every function logs one structured line per event or merge (docs/operations.md "Logs"). Powertools'
``inject_lambda_context`` would add the function's name, ARN, memory size, request id and cold start to each
line: the log group names the function, and the ``ColdStart`` metric counts cold starts, so those keys are
dropped here (about 250 bytes a line). The source location is dropped too (always the handler's report
function). Kept: level (Lambda's ApplicationLogLevel filters on it), message, an RFC 3339 timestamp (the
format Lambda's JSON log format reads), service, ``correlation_id`` (the API Gateway request id that the
saved queries join on) and ``xray_trace_id`` when X-Ray sampled the request: an unsampled request has no
trace to look up (the default rule samples 1 request a second and 5% of the rest, so under load most lines
would carry 54 bytes that lead nowhere). The functions log in Lambda's JSON format with SystemLogLevel WARN
(template.yaml), so Lambda writes no START/END/REPORT lines either. docs/operations.md#logs.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

#: Keys that ``Logger.inject_lambda_context`` appends and CloudWatch already knows.
LAMBDA_CONTEXT_KEYS = frozenset(
    {"cold_start", "function_name", "function_memory_size", "function_arn", "function_request_id"}
)


class CompactFormatter(LambdaPowertoolsFormatter):
    """Powertools' formatter that never takes the Lambda context keys, however they are appended."""

    def append_keys(self, **additional_keys: Any) -> None:
        super().append_keys(**{k: v for k, v in additional_keys.items() if k not in LAMBDA_CONTEXT_KEYS})

    def _get_latest_trace_id(self) -> str | None:
        """The X-Ray trace id of a sampled request only (``_X_AMZN_TRACE_ID`` ends ``Sampled=1``)."""
        header = os.environ.get("_X_AMZN_TRACE_ID", "")
        return super()._get_latest_trace_id() if "Sampled=1" in header.split(";") else None


def compact_formatter() -> CompactFormatter:
    """The formatter of ``function_logger`` (tests format their sample lines with it)."""
    formatter = CompactFormatter(use_rfc3339=True, utc=True)
    formatter.append_keys(location=None)
    return formatter


def function_logger() -> Logger:
    """The Logger of a function's ``app.py`` (service name and level from the POWERTOOLS_* environment)."""
    return Logger(logger_formatter=compact_formatter())
