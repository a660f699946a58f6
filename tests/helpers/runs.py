"""Concrete runs built from the fixture corpus (templates get their placeholders filled), for the merge tests."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from lineage_intake.merge import (
    MergedRun,
    StoredEvent,
    merge_run,
    ordered,
)
from lineage_intake.models import parse_event
from lineage_intake.service.ingest import canonical_json, describe, event_id_of

from tests.helpers.corpus import corpus_json

SEED = "marquez/docker/metadata.json"
TEMPLATES = "openlineage/templates/"
DBT_FAMILY = TEMPLATES + "dbt/structured_logs/postgres/run/results/failed_run_ol_events.json"
FILLED_TIME = datetime(2024, 11, 22, 15, 58, tzinfo=UTC)


def fill(value: Any) -> Any:
    """Template placeholders (json-unit and dbt's jinja matchers) replaced by plain values."""
    if isinstance(value, dict):
        return {k: fill(v) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v) for v in value]
    if isinstance(value, str):
        if value in ("${json-unit.any-string}", "{{ any(result) }}"):
            return "any"
        if value == "${json-unit.any-number}":
            return 1
        if value.startswith("${json-unit.regex}"):
            return "1.18.1"
    return value


def at(seconds: float, base: datetime = FILLED_TIME) -> str:
    return (base + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def template_event(relative: str, *, run_id: str, event_time: str, **job: str) -> dict[str, Any]:
    """One template event made concrete: its runId and eventTime set, optionally its job namespace/name."""
    event = fill(corpus_json(relative))
    event["run"]["runId"] = run_id
    event["eventTime"] = event_time
    event.setdefault("producer", "https://github.com/OpenLineage/OpenLineage/tree/1.0.0/integration/test")
    event["job"].update(job)
    return event


def seed_run(job: str) -> list[dict[str, Any]]:
    """The START and COMPLETE events of one run of the Marquez seed."""
    return [e for e in corpus_json(SEED) if e["job"]["name"] == job]


def seed_runs() -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {}
    for event in corpus_json(SEED):
        runs.setdefault(event["run"]["runId"], []).append(event)
    return runs


def dbt_family(relative: str = DBT_FAMILY) -> list[dict[str, Any]]:
    """A dbt template array made concrete: one runId per job (kept when the template has one), parent facets
    pointing at the runId of the parent job, and an eventTime per event where the template has a matcher."""
    events = [fill(e) for e in corpus_json(relative)]
    run_ids: dict[str, str] = {}
    for event in events:
        name, rid = event["job"]["name"], event["run"]["runId"]
        if rid != "any":
            run_ids.setdefault(name, rid)
        run_ids.setdefault(name, str(uuid.uuid5(uuid.NAMESPACE_URL, f"{relative}#{name}")))
    for i, event in enumerate(events):
        event["run"]["runId"] = run_ids[event["job"]["name"]]
        if not str(event.get("eventTime", "")).startswith("20"):
            event["eventTime"] = at(i)
        parent = event["run"].get("facets", {}).get("parent")
        if parent and parent.get("run", {}).get("runId") == "any":
            parent_name = parent["job"]["name"]
            parent["run"]["runId"] = run_ids.get(
                parent_name, str(uuid.uuid5(uuid.NAMESPACE_URL, f"{relative}#{parent_name}"))
            )
    return events


def flink_streaming_run(run_id: str, checkpoints: int = 2) -> list[dict[str, Any]]:
    """A Flink job (STREAMING): its START, then RUNNING checkpoint events, never a terminal event."""
    events = [template_event(TEMPLATES + "flink/flink1/expected_kafka.json", run_id=run_id, event_time=at(0))]
    for i in range(checkpoints):
        events.append(
            template_event(
                TEMPLATES + "flink/flink1/expected_kafka_checkpoints.json", run_id=run_id, event_time=at(60 * (i + 1))
            )
        )
    return events


def spark_hive_run(run_id: str) -> list[dict[str, Any]]:
    """A Spark run whose output is only on COMPLETE (START and RUNNING carry no datasets)."""
    base = TEMPLATES + "spark/container/pysparkHive"
    return [
        template_event(f"{base}StartEvent.json", run_id=run_id, event_time=at(0)),
        template_event(f"{base}RunningEvent.json", run_id=run_id, event_time=at(5)),
        template_event(f"{base}CompleteEvent.json", run_id=run_id, event_time=at(9)),
    ]


def listener_run() -> list[dict[str, Any]]:
    """Marquez's listener run (a RUNNING and a COMPLETE event that both carry datasets), with the START that
    the listener sent before them: the RUNNING event without its datasets, a minute earlier."""
    running = corpus_json("marquez/api-test-resources/open_lineage/listener/1.json")
    complete = corpus_json("marquez/api-test-resources/open_lineage/listener/2.json")
    start = {k: v for k, v in copy.deepcopy(running).items() if k not in ("inputs", "outputs")}
    start["eventType"] = "START"
    start["eventTime"] = "2020-12-28T19:51:00.001+10:00"
    return [start, running, complete]


def stored(raw: dict[str, Any]) -> StoredEvent:
    """An event as the merge reads it back from the Events table (validated, canonical, keyed like ingest)."""
    event = parse_event(raw)
    outcome = describe(event)
    plain = canonical_json(raw)
    assert outcome.event_time is not None
    return StoredEvent(outcome.event_time, event_id_of(plain), outcome.event_type, json.loads(plain))


def merged(events: Iterable[dict[str, Any]]) -> MergedRun:
    result = merge_run(ordered(stored(e) for e in events))
    assert result is not None
    return result


def names(refs: Iterable[Any]) -> list[tuple[str, str]]:
    return [(r.namespace, r.name) for r in refs]


SPEC_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
PARENT_FACET_URL = "https://openlineage.io/spec/facets/1-0-0/ParentRunFacet.json#/$defs/ParentRunFacet"


def wide_run(
    namespace: str,
    job: str,
    run_id: str,
    *,
    outputs: int = 0,
    fields: int = 0,
    start: float = 0,
    parent: tuple[str, str, str] | None = None,
) -> list[dict[str, Any]]:
    """START and COMPLETE of a run writing ``outputs`` datasets of ``namespace`` (``out0``...), each with a schema
    of ``fields`` fields and column lineage from the same field of ``in<i>``; a ``parent`` facet when given."""
    facets: dict[str, Any] = {}
    if parent is not None:
        facets["parent"] = {
            "_producer": "https://example.com/tests",
            "_schemaURL": PARENT_FACET_URL,
            "job": {"namespace": parent[0], "name": parent[1]},
            "run": {"runId": parent[2]},
        }
    names = [f"c{f}" for f in range(fields)]
    datasets = [
        {
            "namespace": namespace,
            "name": f"out{i}",
            "facets": {
                "schema": {"fields": [{"name": n, "type": "string"} for n in names]},
                "columnLineage": {
                    "fields": {
                        n: {"inputFields": [{"namespace": namespace, "name": f"in{i}", "field": n}]} for n in names
                    }
                },
            }
            if fields
            else {},
        }
        for i in range(outputs)
    ]
    return [
        {
            "eventType": event_type,
            "eventTime": at(start + offset),
            "producer": "https://example.com/tests",
            "schemaURL": SPEC_URL,
            "job": {"namespace": namespace, "name": job},
            "run": {"runId": run_id, "facets": copy.deepcopy(facets)},
            "inputs": [],
            "outputs": copy.deepcopy(datasets),
        }
        for event_type, offset in (("START", 0), ("COMPLETE", 10))
    ]


def spread_run(events: list[dict[str, Any]], other_namespace: str, tags: Sequence[str]) -> list[dict[str, Any]]:
    """A ``wide_run`` whose odd outputs are moved to ``other_namespace`` and whose even outputs carry a dataset
    ``tags`` facet naming ``tags`` (the same names on each: listings several datasets share)."""
    out = copy.deepcopy(events)
    facet = {
        "_producer": "https://example.com/tests",
        "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/TagsDatasetFacet.json",
        "tags": [{"key": name, "value": "true", "source": "CONFIG"} for name in tags],
    }
    for event in out:
        for i, dataset in enumerate(event["outputs"]):
            if i % 2:
                dataset["namespace"] = other_namespace
            else:
                dataset.setdefault("facets", {})["tags"] = copy.deepcopy(facet)
    return out
