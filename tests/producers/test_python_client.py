"""openlineage-python, in its own venv, against the local stack: the sync transport with gzip, ``async_http``,
``openlineage.yml``, and DatasetEvent and JobEvent emission. ``python_producer.py`` is the producer; each test
runs one of its scenarios and checks what the pipeline stored and merged.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.producer_stack import StackProcess
from tests.helpers.producer_venv import ProducerVenv

pytestmark = pytest.mark.producers

PRODUCER = Path(__file__).parent / "python_producer.py"
DATASET_NAMESPACE = "postgres://warehouse:5432"


def emit(
    stack: StackProcess, venv: ProducerVenv, scenario: str, cwd: Path, **env: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run a scenario of python_producer.py; returns what it reports and ingest's outcomes of its events."""
    prefix = f"py-{uuid.uuid4().hex[:8]}"
    mark = stack.log_mark()
    result = subprocess.run(
        [venv.exe("python"), str(PRODUCER), scenario, prefix],
        cwd=cwd,
        env=stack.producer_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return report, stack.stored_events(mark, len(report["events"]))


def run_ids(report: dict[str, Any]) -> dict[str, str]:
    return {e["runId"]: e["job"] for e in report["events"] if e["kind"] == "RUN"}


def test_the_sync_transport_with_gzip_stores_and_merges_a_run_with_column_lineage(
    local_stack: StackProcess, python_venv: ProducerVenv, tmp_path: Path
) -> None:
    # Given HttpTransport with compression: gzip
    # When a run's START and COMPLETE are emitted
    report, accepted = emit(local_stack, python_venv, "sync-gzip", tmp_path)
    # Then both were stored and the run is merged with its datasets and column lineage
    assert [o["eventType"] for o in accepted] == ["START", "COMPLETE"]
    ((run_id, job),) = run_ids(report).items()
    run = local_stack.wait_for_runs([(job, run_id)])[run_id]
    assert run["state"] == "COMPLETE"
    assert [d["name"] for d in run["inputs"]] == [f"{job}.src"]
    assert [d["name"] for d in run["outputs"]] == [f"{job}.dst"]
    column = local_stack.cli("datasets", "columns", DATASET_NAMESPACE, f"{job}.dst", "amount")
    assert [(i["name"], i["field"]) for i in column["inputs"]] == [(f"{job}.src", "amount_cents")]


def test_the_async_transport_stores_eight_concurrent_runs_once_each(
    local_stack: StackProcess, python_venv: ProducerVenv, tmp_path: Path
) -> None:
    # Given AsyncHttpTransport with its defaults (5 s timeout, retries, up to 100 requests at once)
    # When 8 runs are emitted at once
    report, accepted = emit(local_stack, python_venv, "async", tmp_path)
    # Then the transport saw no failure, each event was accepted once, and every run is merged
    assert report["complete"] is True
    assert report["stats"]["failed"] == 0
    assert len(accepted) == len(report["events"]) == 16
    runs = local_stack.wait_for_runs([(job, run_id) for run_id, job in run_ids(report).items()])
    assert {run["state"] for run in runs.values()} == {"COMPLETE"}
    assert all(run["eventCount"] == 2 for run in runs.values())


def test_openlineage_yml_configures_the_client_and_a_failed_run_keeps_its_error(
    local_stack: StackProcess, python_venv: ProducerVenv, tmp_path: Path
) -> None:
    # Given an openlineage.yml in the working directory, and no OPENLINEAGE_URL in the environment
    (tmp_path / "openlineage.yml").write_text(
        "transport:\n"
        "  type: http\n"
        f"  url: {local_stack.url}\n"
        "  endpoint: api/v1/lineage\n"
        f"  auth: {{type: api_key, apiKey: {local_stack.api_key}}}\n"
        "  compression: gzip\n",
        encoding="utf-8",
    )
    # When OpenLineageClient() emits a run that fails
    report, accepted = emit(local_stack, python_venv, "yaml", tmp_path, OPENLINEAGE_URL="", OPENLINEAGE_API_KEY="")
    # Then the file's transport was used, and the run is merged as FAIL with its error message
    assert report["transport"] == "HttpTransport"
    assert [o["eventType"] for o in accepted] == ["START", "FAIL"]
    ((run_id, job),) = run_ids(report).items()
    run = local_stack.wait_for_runs([(job, run_id)])[run_id]
    assert run["state"] == "FAIL"
    assert run["errorMessage"]["message"] == f"{job}: division by zero"


def test_a_dataset_event_and_a_job_event_are_stored_and_make_their_datasets(
    local_stack: StackProcess, python_venv: ProducerVenv, tmp_path: Path
) -> None:
    # Given a DatasetEvent with a schema, and a JobEvent that reads that dataset and writes a file
    # When both are emitted
    report, accepted = emit(local_stack, python_venv, "static", tmp_path)
    # Then both were stored, the dataset has its schema, and the job's datasets are linked to it
    assert [o["kind"] for o in accepted] == ["DATASET", "JOB"]
    dataset_name = next(e["dataset"] for e in report["events"] if e["kind"] == "DATASET")
    job = next(e["job"] for e in report["events"] if e["kind"] == "JOB")
    dataset = local_stack.wait_for_dataset(
        DATASET_NAMESPACE, dataset_name, until=lambda d: job in {j["name"] for j in d["downstream"]}
    )
    assert [f["name"] for f in dataset["fields"]] == ["id", "email"]
    assert job in {j["name"] for j in dataset["downstream"]}
