"""Runs that report data quality, built from the fixture corpus (OpenLineage's dbt test template and the
fluentd proxy's full event, Apache-2.0; tests/fixtures/corpus/ATTRIBUTION.md)."""

from __future__ import annotations

import copy
from typing import Any

from tests.helpers.corpus import corpus_json
from tests.helpers.runs import TEMPLATES, fill

DBT_TESTS = TEMPLATES + "dbt/test/result.json"
FLUENTD_FULL = "openlineage/events/proxy-fluentd/event_full.json"


def dbt_test_run(
    model: str, *, run_id: str | None = None, start: str | None = None, end: str | None = None
) -> list[dict[str, Any]]:
    """The START and terminal event of dbt's test job for ``model`` (e.g. ``test_third_dbt_model``): the
    terminal event's input carries ``dataQualityAssertions``. ``run_id``/``start``/``end`` make another run."""
    events = [fill(e) for e in corpus_json(DBT_TESTS) if e["job"]["name"].endswith(f".{model}.test")]
    assert [e["eventType"] for e in events][:1] == ["START"] and len(events) == 2, model
    for event, when in zip(events, (start, end), strict=True):
        if run_id is not None:
            event["run"]["runId"] = run_id
        if when is not None:
            event["eventTime"] = when
    return events


def assertions_of(event: dict[str, Any]) -> dict[str, Any]:
    facet: dict[str, Any] = event["inputs"][0]["inputFacets"]["dataQualityAssertions"]
    return facet


def fluentd_full_run() -> list[dict[str, Any]]:
    """The proxy's full COMPLETE event (input with ``dataQualityMetrics`` and ``dataQualityAssertions``) and a
    START for it one minute earlier, without datasets."""
    complete = corpus_json(FLUENTD_FULL)
    start = {k: copy.deepcopy(v) for k, v in complete.items() if k not in ("inputs", "outputs")}
    start.update(eventType="START", eventTime="2020-12-28T19:50:01.641Z")
    return [start, complete]
