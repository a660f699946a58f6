"""A producer written with openlineage-python, run in its own venv by tests/producers/test_python_client.py.

``python python_producer.py SCENARIO PREFIX`` emits the scenario's events the way an application would, then
prints one JSON object: what it sent (job names, runIds, dataset names) and the transport's view of it, for the
test to compare with what the pipeline stored and merged. The settings come from the environment
(``OPENLINEAGE_URL``, ``OPENLINEAGE_API_KEY``, ``OPENLINEAGE_NAMESPACE``) or, for ``yaml``, from an
``openlineage.yml`` in the working directory, exactly as the client finds them.

Scenarios:
- ``sync-gzip``: ``HttpTransport`` with ``compression: gzip``; one run with an input, an output and column lineage;
- ``async``: ``AsyncHttpTransport`` (``type: async_http``, the client's 5 s default timeout); 8 runs emitted at
  once, START and COMPLETE each;
- ``yaml``: ``OpenLineageClient()`` with no arguments, configured by ``openlineage.yml``; one run that FAILs;
- ``static``: a DatasetEvent (a dataset with a schema) and a JobEvent (a job reading it and writing another).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import (
    DatasetEvent,
    InputDataset,
    Job,
    JobEvent,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
    StaticDataset,
)
from openlineage.client.facet_v2 import column_lineage_dataset, error_message_run, schema_dataset
from openlineage.client.transport.async_http import AsyncHttpConfig, AsyncHttpTransport
from openlineage.client.transport.http import HttpConfig, HttpTransport
from openlineage.client.uuid import generate_new_uuid

PRODUCER = "https://github.com/lineage-intake/tests/producers/python_producer.py"
DATASET_NAMESPACE = "postgres://warehouse:5432"
ASYNC_RUNS = 8


def settings() -> dict[str, Any]:
    return {
        "url": os.environ["OPENLINEAGE_URL"],
        "endpoint": "api/v1/lineage",
        "auth": {"type": "api_key", "apiKey": os.environ["OPENLINEAGE_API_KEY"]},
        "compression": "gzip",
    }


def at(seconds: int) -> str:
    return (datetime(2026, 3, 1, 12, 0, tzinfo=UTC) + timedelta(seconds=seconds)).isoformat()


def run_pair(job: str, state: RunState = RunState.COMPLETE, *, with_columns: bool = False) -> list[RunEvent]:
    """START and a terminal event of one run of ``job`` reading ``<job>.src`` and writing ``<job>.dst``."""
    namespace = os.environ["OPENLINEAGE_NAMESPACE"]
    run_id = str(generate_new_uuid())
    source, target = f"{job}.src", f"{job}.dst"
    output_facets: dict[str, Any] = {}
    if with_columns:
        field = column_lineage_dataset.InputField(namespace=DATASET_NAMESPACE, name=source, field="amount_cents")
        output_facets["columnLineage"] = column_lineage_dataset.ColumnLineageDatasetFacet(
            fields={"amount": column_lineage_dataset.Fields(inputFields=[field])}
        )
    end_facets: dict[str, Any] = {}
    if state is RunState.FAIL:
        end_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=f"{job}: division by zero", programmingLanguage="python"
        )
    return [
        RunEvent(
            eventType=RunState.START,
            eventTime=at(0),
            run=Run(runId=run_id),
            job=Job(namespace=namespace, name=job),
            producer=PRODUCER,
            inputs=[InputDataset(namespace=DATASET_NAMESPACE, name=source)],
            outputs=[OutputDataset(namespace=DATASET_NAMESPACE, name=target)],
        ),
        RunEvent(
            eventType=state,
            eventTime=at(5),
            run=Run(runId=run_id, facets=end_facets),
            job=Job(namespace=namespace, name=job),
            producer=PRODUCER,
            inputs=[InputDataset(namespace=DATASET_NAMESPACE, name=source)],
            outputs=[OutputDataset(namespace=DATASET_NAMESPACE, name=target, facets=output_facets)],
        ),
    ]


def describe(events: list[Any]) -> list[dict[str, Any]]:
    out = []
    for event in events:
        if isinstance(event, RunEvent):
            run = {"job": event.job.name, "runId": event.run.runId, "eventType": event.eventType.value}
            out.append({"kind": "RUN", **run})
        elif isinstance(event, JobEvent):
            out.append({"kind": "JOB", "job": event.job.name})
        else:
            out.append({"kind": "DATASET", "namespace": event.dataset.namespace, "dataset": event.dataset.name})
    return out


def sync_gzip(prefix: str) -> dict[str, Any]:
    client = OpenLineageClient(transport=HttpTransport(HttpConfig.from_dict(settings())))
    events = run_pair(f"{prefix}.sync_gzip", with_columns=True)
    for event in events:
        client.emit(event)
    client.close()
    return {"events": describe(events)}


def async_http(prefix: str) -> dict[str, Any]:
    transport = AsyncHttpTransport(AsyncHttpConfig.from_dict({**settings(), "type": "async_http"}))
    client = OpenLineageClient(transport=transport)
    events = [event for i in range(ASYNC_RUNS) for event in run_pair(f"{prefix}.async_{i}")]
    for event in events:
        client.emit(event)
    complete = transport.wait_for_completion(timeout=60)
    stats = dict(transport.get_stats())
    transport.close(timeout=5)
    return {"events": describe(events), "complete": complete, "stats": stats}


def from_yaml(prefix: str) -> dict[str, Any]:
    client = OpenLineageClient()  # openlineage.yml in the working directory
    events = run_pair(f"{prefix}.yaml", RunState.FAIL)
    for event in events:
        client.emit(event)
    client.close()
    return {"events": describe(events), "transport": type(client.transport).__name__}


def static(prefix: str) -> dict[str, Any]:
    client = OpenLineageClient(transport=HttpTransport(HttpConfig.from_dict(settings())))
    schema = schema_dataset.SchemaDatasetFacet(
        fields=[
            schema_dataset.SchemaDatasetFacetFields(name="id", type="BIGINT"),
            schema_dataset.SchemaDatasetFacetFields(name="email", type="VARCHAR"),
        ]
    )
    dataset = StaticDataset(namespace=DATASET_NAMESPACE, name=f"{prefix}.customers", facets={"schema": schema})
    job = Job(namespace=os.environ["OPENLINEAGE_NAMESPACE"], name=f"{prefix}.export_customers")
    events: list[Any] = [
        DatasetEvent(eventTime=at(0), producer=PRODUCER, dataset=dataset),
        JobEvent(
            eventTime=at(1),
            producer=PRODUCER,
            job=job,
            inputs=[InputDataset(namespace=DATASET_NAMESPACE, name=f"{prefix}.customers")],
            outputs=[OutputDataset(namespace="s3://exports", name=f"{prefix}/customers.csv")],
        ),
    ]
    for event in events:
        client.emit(event)
    client.close()
    return {"events": describe(events)}


SCENARIOS = {"sync-gzip": sync_gzip, "async": async_http, "yaml": from_yaml, "static": static}

if __name__ == "__main__":
    scenario, prefix = sys.argv[1], sys.argv[2]
    print(json.dumps(SCENARIOS[scenario](prefix)))
