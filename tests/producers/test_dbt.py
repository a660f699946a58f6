"""dbt-ol (dbt-core 1.11 with dbt-duckdb and openlineage-dbt) against the local stack.

The project in ``dbt_project/`` has two seeds, three models with column derivations and tests. The module runs
``dbt-ol seed``, ``dbt-ol run``, ``dbt-ol test`` and ``dbt-ol build`` with a failing test, once, then each test
checks one thing about what the pipeline made of the events: stored, merged with the right states, parented,
with column lineage, with the seeds as datasets.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.producer_stack import StackProcess
from tests.helpers.producer_venv import ProducerVenv

pytestmark = pytest.mark.producers

PROJECT = Path(__file__).parent / "dbt_project"
DBT_RUN_JOB = "dbt-run-lineage_shop"  # dbt-ol's job for the whole invocation: dbt-run-<project name>
MODELS = ("stg_customers", "stg_orders", "customer_revenue")
EMITTED = re.compile(r"Emitted (\d+) OpenLineage events")


@dataclass
class Step:
    """One ``dbt-ol`` invocation: its exit code and the events ingest accepted from it."""

    command: str
    returncode: int
    output: str
    accepted: list[dict[str, Any]]

    def runs(self, suffix: str = "") -> dict[str, str]:
        """{job: runId} of the run events of this step whose job ends with ``suffix``."""
        return {o["job"]: o["runId"] for o in self.accepted if o["kind"] == "RUN" and o["job"].endswith(suffix)}

    @property
    def dbt_run_id(self) -> str:
        return self.runs()[DBT_RUN_JOB]


@dataclass
class DbtSession:
    stack: StackProcess
    database: Path
    steps: dict[str, Step]

    @property
    def dataset_namespace(self) -> str:
        return f"duckdb://{self.database}"  # openlineage-dbt's namespace for dbt-duckdb: duckdb://<path>

    def table(self, name: str) -> str:
        return f"shop.main.{name}"  # <database (file stem)>.<schema>.<table>


@pytest.fixture(scope="module")
def dbt(local_stack: StackProcess, dbt_venv: ProducerVenv, tmp_path_factory: pytest.TempPathFactory) -> DbtSession:
    project = tmp_path_factory.mktemp("dbt") / "lineage_shop"
    shutil.copytree(PROJECT, project)
    database = project / "shop.duckdb"
    env = local_stack.producer_env(
        PATH=f"{dbt_venv.bin}:{local_stack.producer_env()['PATH']}",  # dbt-ol runs `dbt` from PATH
        DBT_PROFILES_DIR=str(project),
        DBT_DUCKDB_PATH=str(database),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        DO_NOT_TRACK="1",
    )
    steps: dict[str, Step] = {}
    for name, argv in {
        "seed": ["seed"],
        "run": ["run"],
        "test": ["test"],
        "build": ["build", "--vars", "{expect_big_spenders: true}"],  # makes tests/revenue_is_positive.sql fail
    }.items():
        mark = local_stack.log_mark()
        result = subprocess.run(
            [dbt_venv.exe("dbt-ol"), *argv, "--no-use-colors"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        output = result.stdout + result.stderr
        emitted = EMITTED.search(output)
        assert emitted is not None, f"dbt-ol {name} emitted nothing:\n{output[-4000:]}"
        accepted = local_stack.stored_events(mark, int(emitted.group(1)))
        steps[name] = Step(name, result.returncode, output, accepted)
    return DbtSession(local_stack, database, steps)


@pytest.fixture(scope="module")
def merged(dbt: DbtSession) -> dict[str, dict[str, Any]]:
    """Every run of every step, merged: {runId: run record}."""
    runs = [(job, run_id) for step in dbt.steps.values() for job, run_id in step.runs().items()]
    return dbt.stack.wait_for_runs(runs)


def test_every_event_dbt_ol_sent_was_stored_once_with_a_2xx(dbt: DbtSession) -> None:
    # Given the four dbt-ol invocations
    # When each has finished emitting
    # Then each exited as dbt did, and the fixture found every emitted event accepted with a 2xx answer
    assert {name: step.returncode for name, step in dbt.steps.items()} == {"seed": 0, "run": 0, "test": 0, "build": 1}
    assert {name: len(step.accepted) for name, step in dbt.steps.items()} == {
        "seed": 2,  # the invocation's START and COMPLETE; dbt-ol sends no events for seed nodes
        "run": 2 + 2 * len(MODELS),
        "test": 6,  # the invocation, the model's schema tests as one job, the singular test
        "build": 2 + 2 * len(MODELS) + 4,
    }


def test_the_runs_are_merged_with_the_states_dbt_reported(dbt: DbtSession, merged: dict[str, dict[str, Any]]) -> None:
    # Given the merged runs of each step
    def states(step: str) -> dict[str, str]:
        return {job: merged[run_id]["state"] for job, run_id in dbt.steps[step].runs().items()}

    # Then run and test succeeded throughout, and build failed in its tests and as a whole
    assert states("seed") == {DBT_RUN_JOB: "COMPLETE"}
    assert states("run") == {DBT_RUN_JOB: "COMPLETE"} | {f"shop.main.lineage_shop.{m}": "COMPLETE" for m in MODELS}
    assert states("test") == {
        DBT_RUN_JOB: "COMPLETE",
        "shop.main.lineage_shop.customer_revenue.test": "COMPLETE",
        "test.lineage_shop.revenue_is_positive": "COMPLETE",
    }
    assert states("build") == {
        DBT_RUN_JOB: "FAIL",
        **{f"shop.main.lineage_shop.{m}.build.run": "COMPLETE" for m in MODELS},
        "shop.main.lineage_shop.customer_revenue.build.test": "FAIL",
        "test.lineage_shop.revenue_is_positive": "FAIL",
    }
    assert all(merged[run_id]["integration"] == "DBT" for run_id in dbt.steps["run"].runs().values())


@pytest.mark.parametrize("step", ["run", "test", "build"])
def test_each_model_and_test_run_has_its_dbt_invocation_as_parent(
    dbt: DbtSession, merged: dict[str, dict[str, Any]], step: str
) -> None:
    # Given the node runs of one dbt-ol invocation
    invocation = dbt.steps[step].dbt_run_id
    nodes = {job: run_id for job, run_id in dbt.steps[step].runs().items() if job != DBT_RUN_JOB}
    assert nodes
    # Then each one's parent is the invocation's run, and the invocation lists them as its children
    expected_parent = {"namespace": dbt.stack.namespace, "job": DBT_RUN_JOB, "runId": invocation}
    assert {job: merged[run_id]["parent"] for job, run_id in nodes.items()} == dict.fromkeys(nodes, expected_parent)
    children = dbt.stack.cli("runs", "show", dbt.stack.namespace, DBT_RUN_JOB, invocation)["children"]
    assert {(c["job"], c["runId"]) for c in children} == set(nodes.items())


def test_the_column_lineage_follows_the_models_sql(dbt: DbtSession, merged: dict[str, dict[str, Any]]) -> None:
    # Given the merged model runs of `dbt-ol run`
    runs = {job.rsplit(".", 1)[-1]: merged[run_id] for job, run_id in dbt.steps["run"].runs().items()}

    def derivations(model: str) -> dict[str, set[tuple[str, str]]]:
        return {
            edge["output"]["field"]: {(i["name"], i["field"]) for i in edge["inputs"]}
            for edge in runs[model]["columnLineage"]
            if edge["output"]["name"] == dbt.table(model)
        }

    # Then every output column comes from the input columns its SQL reads
    customers, orders = dbt.table("raw_customers"), dbt.table("raw_orders")
    assert derivations("stg_customers") == {
        "customer_id": {(customers, "id")},
        "full_name": {(customers, "first_name"), (customers, "last_name")},
    }
    assert derivations("stg_orders") == {
        "order_id": {(orders, "id")},
        "customer_id": {(orders, "customer_id")},
        "amount": {(orders, "amount_cents")},
    }
    assert derivations("customer_revenue") == {
        "customer_id": {(dbt.table("stg_customers"), "customer_id")},
        "full_name": {(dbt.table("stg_customers"), "full_name")},
        "revenue": {(dbt.table("stg_orders"), "amount")},
    }
    # And the column view of the last model names the model's job
    revenue = dbt.stack.cli("datasets", "columns", dbt.dataset_namespace, dbt.table("customer_revenue"), "revenue")
    assert {(i["name"], i["field"], i["job"]["name"]) for i in revenue["inputs"]} >= {
        (dbt.table("stg_orders"), "amount", "shop.main.lineage_shop.customer_revenue")
    }


def test_the_seeds_are_datasets(dbt: DbtSession, merged: dict[str, dict[str, Any]]) -> None:
    # Given the merged runs of `dbt-ol run`, whose staging models read the seeds
    # When the seeds are looked up as datasets
    # Then both exist, with the staging models downstream
    for seed, model in (("raw_customers", "stg_customers"), ("raw_orders", "stg_orders")):
        dataset = dbt.stack.cli("datasets", "show", dbt.dataset_namespace, dbt.table(seed))
        assert f"shop.main.lineage_shop.{model}" in {job["name"] for job in dataset["downstream"]}
