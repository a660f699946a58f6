"""Airflow with the OpenLineage provider against the local stack: ``airflow dags test`` of a three-task DAG.

``airflow_dags/lineage_shop.py`` runs extract >> transform >> load, and load raises. The provider sends each
task's START and COMPLETE or FAIL, with the DAG run as their parent, and the DAG run's FAIL; ``dags test`` sends
no DAG-level START (a scheduler-run DAG does).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.producer_stack import StackProcess
from tests.helpers.producer_venv import ProducerVenv

pytestmark = pytest.mark.producers

DAGS = Path(__file__).parent / "airflow_dags"
DAG_ID = "lineage_shop"
TASKS = {"extract": "COMPLETE", "transform": "COMPLETE", "load": "FAIL"}
FAILURE_MESSAGE = "lineage_shop: the warehouse refused the load (expected by the producers suite)"
EMITTED = re.compile(r"Successfully emitted OpenLineage `(\w+)` event")


@dataclass
class DagTest:
    stack: StackProcess
    returncode: int
    output: str
    accepted: list[dict[str, Any]]

    @property
    def runs(self) -> dict[str, str]:
        """{job: runId}: the DAG run's job is the dag_id, a task's is <dag_id>.<task_id>."""
        return {o["job"]: o["runId"] for o in self.accepted if o["kind"] == "RUN"}


@pytest.fixture(scope="module")
def dag_test(
    local_stack: StackProcess, airflow_venv: ProducerVenv, tmp_path_factory: pytest.TempPathFactory
) -> DagTest:
    home = tmp_path_factory.mktemp("airflow")
    # The provider reads OPENLINEAGE_URL, OPENLINEAGE_API_KEY and OPENLINEAGE_NAMESPACE, as the README says.
    env = local_stack.producer_env(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )

    def airflow(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [airflow_venv.exe("airflow"), *argv], cwd=home, env=env, capture_output=True, text=True, timeout=600
        )

    migrated = airflow("db", "migrate")
    assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
    mark = local_stack.log_mark()
    result = airflow("dags", "test", DAG_ID)
    output = result.stdout + result.stderr
    emitted = EMITTED.findall(output)
    assert emitted, f"the provider emitted nothing:\n{output[-4000:]}"
    return DagTest(local_stack, result.returncode, output, local_stack.stored_events(mark, len(emitted)))


@pytest.fixture(scope="module")
def merged(dag_test: DagTest) -> dict[str, dict[str, Any]]:
    """{job: merged run} of the DAG run and its task runs."""
    found = dag_test.stack.wait_for_runs(dag_test.runs.items())
    return {job: found[run_id] for job, run_id in dag_test.runs.items()}


def test_every_event_the_provider_sent_was_stored_once_with_a_2xx(dag_test: DagTest) -> None:
    # Given `airflow dags test` of a DAG whose last task fails
    # Then it exits non-zero, and every event (START and end of each task, the DAG run's FAIL) was accepted
    assert dag_test.returncode != 0
    assert sorted((o["job"], o["eventType"]) for o in dag_test.accepted) == sorted(
        [(f"{DAG_ID}.{task}", event) for task, end in TASKS.items() for event in ("START", end)] + [(DAG_ID, "FAIL")]
    )


def test_the_task_runs_are_merged_under_their_dag_run(dag_test: DagTest, merged: dict[str, dict[str, Any]]) -> None:
    # Given the merged runs
    dag_run_id = dag_test.runs[DAG_ID]
    tasks = {f"{DAG_ID}.{task}": state for task, state in TASKS.items()}
    # Then each task run has its state, the DAG run as its parent, and the DAG run lists them as children
    assert {job: merged[job]["state"] for job in tasks} == tasks
    parent = {"namespace": dag_test.stack.namespace, "job": DAG_ID, "runId": dag_run_id}
    assert {job: merged[job]["parent"] for job in tasks} == dict.fromkeys(tasks, parent)
    assert {job: merged[job]["integration"] for job in tasks} == dict.fromkeys(tasks, "AIRFLOW")
    dag_run = dag_test.stack.cli("runs", "show", dag_test.stack.namespace, DAG_ID, dag_run_id)  # all merged now
    assert {(c["job"], c["runId"]) for c in dag_run["children"]} == {(job, dag_test.runs[job]) for job in tasks}


def test_the_failing_tasks_error_message_is_on_its_run(merged: dict[str, dict[str, Any]]) -> None:
    # Given the merged run of the task that raised
    load = merged[f"{DAG_ID}.load"]
    # Then it carries the exception's message and its stack trace
    assert load["errorMessage"]["message"] == FAILURE_MESSAGE
    assert load["errorMessage"]["programmingLanguage"] == "python"
    assert f"RuntimeError: {FAILURE_MESSAGE}" in load["errorMessage"]["stackTrace"]


def test_the_dag_run_is_merged_as_failed(merged: dict[str, dict[str, Any]]) -> None:
    # Given the DAG run, of which only the FAIL event was sent
    # When the stack's START grace period has passed
    # Then it is merged as FAIL, like a DAG run the scheduler ran
    assert merged[DAG_ID]["state"] == "FAIL"
    # And it says that its START never came (merged after the stack's START grace period)
    assert merged[DAG_ID]["startMissing"] is True
