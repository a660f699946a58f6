"""Replay and the quarantine's storage on moto, through the services the CLI calls (the e2e tests drive the CLI)."""

from __future__ import annotations

import json
from secrets import token_hex
from typing import Any

import boto3
import pytest
from lineage_intake import keys
from lineage_intake.principal import Principal
from lineage_intake.service.admin import Admin
from lineage_intake.service.quarantine import Quarantine
from lineage_intake.service.replay import Replayer
from lineage_intake.store.auth import ConnectionStore, TokenStore
from lineage_intake.store.quarantine import QuarantineStore
from lineage_intake_tools.local.template import Stack

from tests.helpers.eventlog import CliRunner, quarantined, stack_env
from tests.helpers.pipeline import Pipeline
from tests.helpers.runs import seed_run

NOW = 1_795_000_000.0


@pytest.fixture
def admin(stack: Stack, aws: boto3.Session) -> Admin:
    ddb = aws.client("dynamodb")
    return Admin(
        connections=ConnectionStore(ddb, stack.physical_name("ConnectionsTable")),
        tokens=TokenStore(ddb, stack.physical_name("TokensTable")),
    )


def keep(pipeline: Pipeline, event: dict[str, Any], token_id: str, connections: set[str]) -> None:
    """Ingest one event with the quarantine on, as the ingest function does."""
    ingest = pipeline.ingest
    ingest.quarantine = Quarantine(QuarantineStore(pipeline.events), retention_days=14, daily_cap=100)
    outcome = ingest.store_event(event, Principal(token_id, frozenset(connections)))
    assert outcome.status == "rejected" and outcome.quarantined == "kept"


def replayer(pipeline: Pipeline, admin: Admin) -> Replayer:
    pipeline.ingest.quarantine = None
    return Replayer(pipeline.ingest, QuarantineStore(pipeline.events), admin.tokens)


def test_as_namespace_rewrites_the_job_namespace_and_still_checks_the_tokens_scope(pipeline, admin, aws) -> None:
    # Given a token for `production` whose run went to dbt-ol's default namespace `dbt`
    admin.create_connection("production")
    token = admin.create_token(["production"]).record
    start, complete = (dict(e, job={**e["job"], "namespace": "dbt"}) for e in seed_run("etl_orders_7_days"))
    keep(pipeline, start, token.token_id, {"production"})
    keep(pipeline, complete, token.token_id, {"production"})
    items = quarantined(aws, pipeline.events_table)
    # When the operator replays them as `production`
    results = replayer(pipeline, admin).replay(items, as_namespace="production")
    # Then both are stored in `production` and merge there
    assert [r.status for r in results] == ["accepted", "accepted"]
    assert {r.namespace for r in results} == {"production"}
    outcomes = pipeline.deliver(pipeline.filtered(pipeline.new_records()))
    assert any(o.status == "merged" and o.namespace == "production" for o in outcomes)
    # And a rewrite into a namespace the token may not write is still refused
    again = replayer(pipeline, admin).replay(items, as_namespace="elsewhere")
    assert [r.status for r in again] == ["rejected", "rejected"] and "not writable" in str(again[0].message)


def test_a_replayed_event_records_the_connections_the_token_has_at_replay(pipeline, admin, aws) -> None:
    # Given a token for `production` whose run into `staging` was refused and kept
    admin.create_connection("production")
    token = admin.create_token(["production"]).record
    start, _complete = (dict(e, job={**e["job"], "namespace": "staging"}) for e in seed_run("etl_orders_7_days"))
    keep(pipeline, start, token.token_id, {"production"})
    # When the operator adds `staging` to the token's scope and replays
    admin.create_connection("staging")
    admin.change_scope(token.token_id, add=["staging"])
    (result,) = replayer(pipeline, admin).replay(quarantined(aws, pipeline.events_table))
    # Then the stored event names the token and the connections it has now (what the merge may write)
    assert result.status == "accepted"
    stored = list(pipeline.events.query_partition(_run_pk(start)))
    assert [(i["tokenId"], i["connections"]) for i in stored] == [(token.token_id, ["production", "staging"])]


def _run_pk(event: dict[str, Any]) -> str:
    return keys.run_pk(event["job"]["namespace"], event["job"]["name"], event["run"]["runId"])


def test_a_revoked_token_replays_nothing_and_says_why(pipeline, admin, aws) -> None:
    # Given a quarantined event of a token that was revoked since
    admin.create_connection("production")
    token = admin.create_token(["production"]).record
    start = dict(seed_run("etl_orders_7_days")[0], job={"namespace": "dbt", "name": "orders"})
    keep(pipeline, start, token.token_id, {"production"})
    admin.revoke_token(token.token_id)
    # When it is replayed
    (result,) = replayer(pipeline, admin).replay(quarantined(aws, pipeline.events_table))
    # Then it is still refused because of the token, and the quarantine item records the attempt
    assert result.status == "rejected" and result.message == "the token that sent it is revoked"
    (item,) = quarantined(aws, pipeline.events_table)
    assert item["replayStatus"] == "rejected"


def test_a_large_rejected_body_goes_to_s3_under_rejected_and_reads_back(pipeline, aws) -> None:
    # Given an invalid event whose compressed body is over an item's size (random hex compresses to about half)
    event = {"eventTime": "2026-01-01T00:00:00Z", "job": {"namespace": "dbt", "name": "big"}, "x": token_hex(400_000)}
    store = QuarantineStore(pipeline.events)
    quarantine = Quarantine(store, retention_days=14, daily_cap=10)
    body = json.dumps(event).encode()
    principal = Principal("tok", frozenset())
    # When it is quarantined
    kept, _ = quarantine.keep(body, event, principal=principal, reason="invalid_event", message="m", errors=[], now=NOW)
    # Then the item points to S3 under rejected/, and the body reads back as sent
    assert kept == "kept"
    (item,) = quarantined(aws, pipeline.events_table)
    assert "body" not in item and str(item["bodyRef"]).split("/", 3)[3].startswith("rejected/")
    assert store.body(item) == body


def test_namespaces_delete_removes_every_job_of_the_namespace(pipeline, stack, aws, capsys) -> None:
    # Given two merged jobs of the seed's namespace
    first, second = seed_run("etl_orders_7_days"), seed_run("etl_delivery_7_days")
    pipeline.send(*first)
    pipeline.send(*second)
    namespace = first[0]["job"]["namespace"]
    # When the namespace is deleted
    report = CliRunner(capsys, stack_env(stack)).json("namespaces", "delete", namespace, "--yes")
    # Then neither run is left, and the report names both jobs
    assert pipeline.lineage.get_run(namespace, "etl_orders_7_days", first[0]["run"]["runId"]) is None
    assert pipeline.lineage.get_run(namespace, "etl_delivery_7_days", second[0]["run"]["runId"]) is None
    assert {f"job {namespace}/etl_orders_7_days", f"job {namespace}/etl_delivery_7_days"} <= set(report["parts"])
    assert report["runs"] == 2 and report["events"] == 4
