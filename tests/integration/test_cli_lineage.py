"""`lineage-intake runs ...` and `lineage-intake datasets ...` on moto, through the CLI's own entry point."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from lineage_intake_tools.local.template import Stack

from tests.helpers.cli_run import CliRun, cli_runner
from tests.helpers.pipeline import Pipeline
from tests.helpers.runs import dbt_family, seed_run


@pytest.fixture
def run_cli(stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> CliRun:
    return cli_runner(stack, monkeypatch, capsys)


def test_runs_show_prints_the_merged_run_with_its_lineage(pipeline: Pipeline, run_cli: Any) -> None:
    start, complete = seed_run("etl_orders_7_days")
    pipeline.send(start, complete)
    code, out, _ = run_cli("runs", "show", "food_delivery", "etl_orders_7_days", start["run"]["runId"], "--json")
    assert code == 0
    run = json.loads(out)
    assert run["state"] == "COMPLETE" and run["parent"] is None and run["integration"] is None
    assert {"namespace": "food_delivery", "name": "public.orders"} in run["inputs"] and len(run["inputs"]) == 4
    assert run["outputs"] == [{"namespace": "food_delivery", "name": "public.orders_7_days"}]
    menu_id = next(c for c in run["columnLineage"] if c["output"]["field"] == "menu_id")
    assert menu_id["output"] == {"namespace": "food_delivery", "name": "public.orders_7_days", "field": "menu_id"}
    assert [(i["namespace"], i["name"], i["field"]) for i in menu_id["inputs"]] == [
        ("food_delivery", "public.categories", "menu_id"),
        ("food_delivery", "public.menus", "id"),
    ]


def test_runs_show_gives_the_integration_the_parent_and_the_children_of_dbt_runs(
    pipeline: Pipeline, run_cli: Any
) -> None:
    family = dbt_family()
    pipeline.send(*family)
    model = next(e for e in family if e["job"]["name"] == "model.jaffle_shop.orders")
    root = next(e for e in family if e["job"]["name"] == "dbt-run-jaffle_shop")
    code, out, _ = run_cli(
        "runs", "show", "dbt-test-namespace", "model.jaffle_shop.orders", model["run"]["runId"], "--json"
    )
    run = json.loads(out)
    assert code == 0 and run["integration"] == "DBT" and run["state"] == "FAIL"
    assert run["parent"] == {
        "namespace": "dbt-test-namespace",
        "job": "dbt-run-jaffle_shop",
        "runId": root["run"]["runId"],
    }
    assert sorted(c["job"] for c in run["children"]) == [
        "model.jaffle_shop.orders.sql.1",
        "model.jaffle_shop.orders.sql.2",
    ]
    # The runId is found whatever its case, as ingest normalizes it
    code, out, _ = run_cli(
        "runs", "show", "dbt-test-namespace", "model.jaffle_shop.orders", model["run"]["runId"].upper()
    )
    assert code == 0 and "FAIL" in out and "parent: dbt-test-namespace/dbt-run-jaffle_shop" in out


def test_an_unknown_run_or_dataset_exits_1_with_a_clear_message(pipeline: Pipeline, run_cli: Any) -> None:
    code, out, err = run_cli("runs", "show", "food_delivery", "etl_menus", "4d3b8069-69b6-4708-ade0-3275112c9f04")
    assert code == 1 and out == ""
    assert "no merged run 4d3b8069-69b6-4708-ade0-3275112c9f04 of job 'etl_menus'" in err
    code, _, err = run_cli("datasets", "show", "food_delivery", "public.nothing", "--json")
    assert code == 1 and json.loads(err) == {
        "error": "not_found",
        "message": json.loads(err)["message"],
    }
    assert "no dataset 'public.nothing' in namespace 'food_delivery'" in json.loads(err)["message"]


def test_datasets_show_gives_partial_upstream_and_downstream(pipeline: Pipeline, run_cli: Any) -> None:
    pipeline.send(*seed_run("etl_menus"))
    pipeline.send(*seed_run("etl_orders_7_days"))
    code, out, _ = run_cli("datasets", "show", "food_delivery", "public.menus", "--json")
    dataset = json.loads(out)
    assert code == 0 and dataset["partial"] is True
    assert dataset["upstream"] == [{"namespace": "food_delivery", "name": "etl_menus", "sources": ["run"]}]
    assert dataset["downstream"] == [{"namespace": "food_delivery", "name": "etl_orders_7_days", "sources": ["run"]}]
    assert [f["name"] for f in dataset["fields"]] == ["id", "name", "restaurant_id", "description"]
    # When an operator registers it, it is a full asset
    code, out, _ = run_cli("datasets", "register", "food_delivery", "public.menus", "--by", "ops", "--json")
    assert code == 0 and json.loads(out)["partial"] is False and json.loads(out)["registered"] is True
    code, out, _ = run_cli("datasets", "show", "food_delivery", "public.menus")
    assert (
        code == 0
        and "public.menus: full" in out
        and "downstream jobs (read it): food_delivery/etl_orders_7_days" in out
    )


def test_datasets_columns_gives_the_input_fields_and_the_consumers_of_a_field(pipeline: Pipeline, run_cli: Any) -> None:
    pipeline.send(*seed_run("etl_orders_7_days"))
    code, out, _ = run_cli("datasets", "columns", "food_delivery", "public.orders_7_days", "menu_id", "--json")
    column = json.loads(out)
    assert code == 0 and sorted((i["name"], i["field"]) for i in column["inputs"]) == [
        ("public.categories", "menu_id"),
        ("public.menus", "id"),
    ]
    code, out, _ = run_cli("datasets", "columns", "food_delivery", "public.menus", "id", "--json")
    consumers = json.loads(out)["consumers"]
    assert code == 0 and [(c["name"], c["field"]) for c in consumers] == [("public.orders_7_days", "menu_id")]


def test_runs_list_awaiting_and_merge_help_operators(pipeline: Pipeline, run_cli: Any) -> None:
    first_start, first_complete = seed_run("etl_menus")
    second = [copy.deepcopy(e) for e in (first_start, first_complete)]
    for event, when in zip(second, ("2020-02-23T22:42:42.000Z", "2020-02-23T22:45:52.000Z"), strict=True):
        event["run"]["runId"] = "11111111-2222-4333-8444-555555555555"
        event["eventTime"] = when
    pipeline.send(first_start, first_complete, second[1])
    # A job's runs, newest first
    code, out, _ = run_cli("runs", "list", "food_delivery", "etl_menus", "--json")
    assert code == 0 and [(r["runId"], r["state"]) for r in json.loads(out)] == [
        ("11111111-2222-4333-8444-555555555555", "AWAITING_START"),
        (first_start["run"]["runId"], "COMPLETE"),
    ]
    # Runs awaiting their START
    code, out, _ = run_cli("runs", "awaiting", "--json")
    assert code == 0 and [r["runId"] for r in json.loads(out)] == ["11111111-2222-4333-8444-555555555555"]
    # The START is stored but its stream record never reached the merge (it went to the DLQ, say)
    pipeline.store(second[0])
    code, out, _ = run_cli("runs", "merge", "food_delivery", "etl_menus", "11111111-2222-4333-8444-555555555555")
    assert code == 0 and "merged (COMPLETE), 2 event(s)" in out
    code, out, _ = run_cli("runs", "awaiting")
    assert code == 0 and out.strip() == "No run awaits START."
