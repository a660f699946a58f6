"""``lineage-intake jobs|datasets|namespaces delete`` on moto: nothing of the deleted job is left, others stay."""

from __future__ import annotations

from typing import Any

import pytest
from lineage_intake import keys
from lineage_intake.principal import Principal
from lineage_intake.service.quarantine import Quarantine
from lineage_intake.store.quarantine import QuarantineStore
from lineage_intake_tools.local.template import Stack

from tests.helpers.eventlog import CliRunner, stack_env, table_items
from tests.helpers.runs import seed_run

JOB = "etl_orders_7_days"
OTHER = "etl_delivery_7_days"


@pytest.fixture
def run_cli(stack: Stack, capsys: pytest.CaptureFixture[str]) -> CliRunner:
    return CliRunner(capsys, stack_env(stack))


def mentions(item: dict[str, Any], namespace: str, job: str, job_key: str) -> bool:
    """Does a stored item belong to, or point at, the job?"""
    if item.get("namespace") == namespace and (item.get("job") == job or item.get("name") == job):
        return True
    return any(job_key in str(item.get(k, "")) for k in ("pk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"))


def test_jobs_delete_leaves_no_record_of_the_job_its_runs_edges_or_events(pipeline, stack, aws, run_cli) -> None:
    # Given two merged jobs of the seed, with edges and column lineage, and a quarantined event of the first
    job_events, other_events = seed_run(JOB), seed_run(OTHER)
    pipeline.send(*job_events)
    pipeline.send(*other_events)
    namespace = job_events[0]["job"]["namespace"]
    quarantine = Quarantine(QuarantineStore(pipeline.events), retention_days=14, daily_cap=10)
    principal = Principal("tok", frozenset())
    kept, _ = quarantine.keep(
        b"{}", job_events[0], principal=principal, reason="forbidden", message="x", errors=[], now=1e9
    )
    assert kept == "kept"
    job_key = keys.job_key(namespace, JOB)
    lineage_table, events_table = pipeline.lineage_table, pipeline.events_table
    assert any(mentions(i, namespace, JOB, job_key) for i in table_items(aws, lineage_table))
    other_before = [i for i in table_items(aws, lineage_table) if i.get("job") == OTHER or i.get("name") == OTHER]
    # When the operator deletes the job, confirming with --yes
    report = run_cli.json("jobs", "delete", namespace, JOB, "--yes")
    # Then nothing in either table belongs to or points at the job
    assert not [i for i in table_items(aws, lineage_table) if mentions(i, namespace, JOB, job_key)]
    assert not [i for i in table_items(aws, events_table) if mentions(i, namespace, JOB, job_key)]
    # And the report counts what went
    assert report["runs"] == 1 and report["events"] == 2 and report["quarantinedEvents"] == 1
    assert report["lineageRecords"] > 2
    # And the other job is untouched
    other_after = [i for i in table_items(aws, lineage_table) if i.get("job") == OTHER or i.get("name") == OTHER]
    assert other_after == other_before
    assert pipeline.lineage.get_run(namespace, OTHER, other_events[0]["run"]["runId"]) is not None


def test_a_delete_without_yes_and_without_a_terminal_is_refused(pipeline, run_cli) -> None:
    # Given a merged job
    events = seed_run(JOB)
    pipeline.send(*events)
    namespace = events[0]["job"]["namespace"]
    # When the delete is asked for without --yes, from a script
    code, _, err = run_cli("jobs", "delete", namespace, JOB)
    # Then it is refused and nothing is deleted
    assert code != 0 and "--yes" in err
    assert pipeline.lineage.get_run(namespace, JOB, events[0]["run"]["runId"]) is not None


def test_datasets_delete_removes_the_dataset_and_the_edges_jobs_hold_about_it(pipeline, aws, run_cli) -> None:
    # Given a merged run that wrote public.orders_7_days
    events = seed_run(JOB)
    pipeline.send(*events)
    namespace = events[0]["job"]["namespace"]
    dataset_key = keys.dataset_key(namespace, "public.orders_7_days")
    # When the dataset is deleted
    report = run_cli.json("datasets", "delete", namespace, "public.orders_7_days", "--yes")
    # Then no record is keyed by it or indexed under it
    left = [i for i in table_items(aws, pipeline.lineage_table) if dataset_key in (i.get("pk"), i.get("gsi1pk"))]
    assert left == [] and report["lineageRecords"] >= 2
    # And `datasets show` no longer finds it
    code, _, _ = run_cli("datasets", "show", namespace, "public.orders_7_days")
    assert code == 1
