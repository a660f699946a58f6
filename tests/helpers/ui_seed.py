"""Seeds for the Marquez-web-UI contract tests: the Marquez food_delivery seed and a dbt run family, moved into
the local stack's namespace with fresh names and runIds and times in the last half hour, sent over HTTP and
waited for until every run is merged."""

from __future__ import annotations

import copy
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import requests

from tests.helpers.corpus import corpus_json
from tests.helpers.local_stack import RunningStack
from tests.helpers.runs import SEED, dbt_family

MERGE_TIMEOUT = 30.0
TAGS_FACET = {
    "_producer": "https://example.com/e2e",
    "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/TagsJobFacet.json",
    "tags": [{"key": "pii", "value": "true", "source": "CONFIG"}],
}


def _now_minus(minutes: int, index: int) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes, seconds=-index)).isoformat().replace("+00:00", "Z")


def food_delivery(stack: RunningStack, suffix: str) -> list[dict[str, Any]]:
    """The seed's jobs renamed ``<name>_<suffix>`` in the stack's namespace; etl_orders_7_days gets a tags facet."""
    events = copy.deepcopy(corpus_json(SEED))
    run_ids: dict[str, str] = {}
    for index, event in enumerate(events):
        event["job"]["namespace"] = stack.namespace
        base_name = event["job"]["name"]
        event["job"]["name"] = f"{base_name}_{suffix}"
        run_ids.setdefault(event["job"]["name"], str(uuid.uuid4()))
        event["run"]["runId"] = run_ids[event["job"]["name"]]
        event["eventTime"] = _now_minus(30, index)
        if base_name == "etl_orders_7_days":
            event["job"].setdefault("facets", {})["tags"] = {**TAGS_FACET, "tags": [{"key": f"pii_{suffix}"}]}
    return events


def dbt_run(stack: RunningStack, suffix: str) -> list[dict[str, Any]]:
    """A dbt run family (parent job and its models, one failed) in the stack's namespace, renamed with ``suffix``."""
    events = dbt_family()
    names = {e["job"]["name"] for e in events}
    for index, event in enumerate(events):
        event["job"]["namespace"] = stack.namespace
        event["job"]["name"] = f"{event['job']['name']}_{suffix}"
        event["eventTime"] = _now_minus(20, index)
        parent = event["run"].get("facets", {}).get("parent")
        if parent and parent.get("job", {}).get("name") in names:
            parent["job"] = {"namespace": stack.namespace, "name": f"{parent['job']['name']}_{suffix}"}
    return events


def send_merged(stack: RunningStack, events: list[dict[str, Any]], states: tuple[str, ...] = ("COMPLETED",)) -> None:
    """POST each event with the stack's API key, then wait until each run is merged into one of ``states`` and
    each output dataset reads back: a merge writes the run item before the job's datasets, so a run that reads as
    COMPLETED can come a moment before its datasets."""
    for event in events:
        answer = requests.post(
            stack.url + "/api/v1/lineage",
            json=event,
            headers={"Authorization": f"Bearer {stack.api_key}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
    pending = {e["run"]["runId"] for e in events}
    outputs = {
        f"/api/v1/namespaces/{quote(o['namespace'], safe='')}/datasets/{quote(o['name'], safe='')}"
        for e in events
        for o in e.get("outputs") or ()
    }
    deadline = time.monotonic() + MERGE_TIMEOUT
    while (pending or outputs) and time.monotonic() < deadline:
        for run_id in list(pending):
            answer = _read(stack, f"/api/v1/jobs/runs/{run_id}")
            if answer.status_code == 200 and answer.json()["state"] in states:
                pending.discard(run_id)
        for path in list(outputs) if not pending else ():
            if _read(stack, path).status_code == 200:
                outputs.discard(path)
        time.sleep(0.3)
    assert not pending, f"runs not merged in {MERGE_TIMEOUT}s: {pending}"
    assert not outputs, f"datasets not readable in {MERGE_TIMEOUT}s: {outputs}"


def _read(stack: RunningStack, path: str) -> requests.Response:
    return requests.get(stack.url + path, headers={"Authorization": f"Bearer {stack.read_token}"}, timeout=30)


FACET = {"_producer": "https://example.com/tests", "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/x.json"}
DATASET_TAGS = {
    **FACET,
    "tags": [{"key": "pii", "value": "true", "source": "CONFIG"}, {"key": "domain", "value": "sales"}],
}
#: ``total`` of the UI-fields dataset is computed from the food_delivery seed's ``public.orders.order_id``.
COLUMN_LINEAGE = {
    **FACET,
    "fields": {
        "total": {"inputFields": [{"namespace": "food_delivery", "name": "public.orders", "field": "order_id"}]}
    },
}
LIFECYCLE_CREATE = {**FACET, "lifecycleStateChange": "CREATE"}


def ui_fields_run(
    namespace: str, job: str, dataset_namespace: str, run_id: str, when: datetime, output_facets: dict[str, Any]
) -> list[dict[str, Any]]:
    """START and COMPLETE of ``job`` reading the seed's ``public.orders`` and writing ``public.ui_fields`` (in
    ``dataset_namespace``) with a two-column schema and ``output_facets`` (tags, columnLineage, lifecycle...)."""
    output = {
        "namespace": dataset_namespace,
        "name": "public.ui_fields",
        "facets": {
            "schema": {**FACET, "fields": [{"name": "id", "type": "INTEGER"}, {"name": "total", "type": "INTEGER"}]},
            **output_facets,
        },
    }
    start = {
        "eventType": "START",
        "eventTime": when.isoformat().replace("+00:00", "Z"),
        "run": {"runId": run_id},
        "job": {"namespace": namespace, "name": job},
        "inputs": [{"namespace": "food_delivery", "name": "public.orders"}],
        "outputs": [output],
        "producer": FACET["_producer"],
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }
    complete = {**copy.deepcopy(start), "eventType": "COMPLETE"}
    complete["eventTime"] = (when + timedelta(seconds=5)).isoformat().replace("+00:00", "Z")
    return [start, complete]
