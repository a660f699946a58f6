"""The functions' compact log lines: what CloudWatch would bill twice is left out (docs/operations.md#logs)."""

from __future__ import annotations

import json
import logging

import pytest
from lineage_intake.logs import compact_formatter

ROOT_ID = "1-67890abc-0123456789abcdef01234567"


def _line(monkeypatch: pytest.MonkeyPatch, trace_header: str | None) -> dict[str, object]:
    if trace_header is None:
        monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    else:
        monkeypatch.setenv("_X_AMZN_TRACE_ID", trace_header)
    formatter = compact_formatter()
    formatter.append_keys(service="ingest", function_name="lineage-intake-ingest", cold_start=False)
    record = logging.LogRecord("ingest", logging.INFO, "app.py", 1, "event accepted", None, None, "report")
    record.__dict__.update({"outcome": "accepted", "runId": "r1"})
    return dict(json.loads(formatter.format(record)))


def test_a_sampled_request_logs_its_trace_id_so_the_line_leads_to_the_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a request that X-Ray sampled
    line = _line(monkeypatch, f"Root={ROOT_ID};Parent=53995c3f42cd8ad8;Sampled=1")
    # Then its line names the trace, next to the fields the saved queries read
    assert line["xray_trace_id"] == ROOT_ID
    assert (line["outcome"], line["runId"], line["service"], line["level"]) == ("accepted", "r1", "ingest", "INFO")


@pytest.mark.parametrize(
    "header", [f"Root={ROOT_ID};Parent=53995c3f42cd8ad8;Sampled=0", f"Root={ROOT_ID};Sampled=?", None]
)
def test_an_unsampled_request_logs_no_trace_id_as_x_ray_has_no_trace_for_it(
    monkeypatch: pytest.MonkeyPatch, header: str | None
) -> None:
    line = _line(monkeypatch, header)
    assert "xray_trace_id" not in line
    assert line["message"] == "event accepted"


def test_the_lambda_context_keys_stay_out_of_every_line(monkeypatch: pytest.MonkeyPatch) -> None:
    line = _line(monkeypatch, None)
    assert not {"function_name", "cold_start", "location"} & set(line)
