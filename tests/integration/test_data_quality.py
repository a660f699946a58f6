"""Data quality on moto (issue 10): the merge keeps each dataset's latest dataQualityAssertions and
dataQualityMetrics in one small item (docs/read-api.md "Data quality"), and GET /datasets/{name} serves them
as Marquez facets, plus the run that reported them."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from lineage_intake import keys
from lineage_intake.store.lineage_quality import QUALITY_SK

from tests.helpers.api_request import api_get as get
from tests.helpers.marquez_schema import assert_valid_response
from tests.helpers.pipeline import Pipeline
from tests.helpers.quality import assertions_of, dbt_test_run, fluentd_full_run
from tests.helpers.runs import seed_run

NS, MODEL = "bigquery", "random-gcp-project.dbt_test1.test_third_dbt_model"
LATER_RUN, EARLIER_RUN = "7a3f0c1e-8a4b-4c7d-9e2f-000000000001", "7a3f0c1e-8a4b-4c7d-9e2f-000000000002"


def dataset_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{quote(namespace, safe='')}/datasets/{quote(name, safe='')}"


def quality_item(pipeline: Pipeline, namespace: str, name: str) -> dict[str, Any] | None:
    return pipeline.lineage._get(keys.dataset_key(namespace, name), QUALITY_SK)


def failing(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same test run, its first assertion failed."""
    events[1]["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"][0]["success"] = False
    return events


def test_a_dbt_test_run_serves_its_assertions_as_the_datasets_facets(api, lambda_context, pipeline) -> None:
    # Given dbt's test run of test_third_dbt_model, merged
    events = dbt_test_run("test_third_dbt_model")
    (outcome,) = pipeline.send(*events)
    assert outcome.status == "merged"
    # When the tested dataset is read
    status, dataset = get(api, lambda_context, dataset_path(NS, MODEL))
    # Then its facets hold the assertions verbatim (Marquez's shape), dataQuality says which run sent them
    assert status == 200
    assert dataset["facets"] == {"dataQualityAssertions": assertions_of(events[1])}
    assert dataset["dataQuality"]["runId"] == events[0]["run"]["runId"]
    assert [a["assertion"] for a in dataset["dataQuality"]["assertions"]] == [
        "not_null",
        "not_null",
        "unique",
        "unique",
    ]
    assert_valid_response(dataset, "/namespaces/{namespace}/datasets/{dataset}")


def test_the_dataset_listing_shows_each_rows_latest_assertions(api, lambda_context, pipeline) -> None:
    # Given two dbt test runs of two models, one with a failed assertion
    pipeline.send(*dbt_test_run("test_third_dbt_model"))
    pipeline.send(*failing(dbt_test_run("test_second_dbt_model")))
    # When the namespace's datasets are listed
    status, listing = get(api, lambda_context, f"/api/v1/namespaces/{NS}/datasets")
    # Then each tested row carries its own assertions in facets, as Marquez's UI reads them
    assert status == 200
    success = {
        d["name"]: [a["success"] for a in d["facets"]["dataQualityAssertions"]["assertions"]]
        for d in listing["datasets"]
        if "dataQualityAssertions" in d["facets"]
    }
    assert success[MODEL] == [True, True, True, True]
    assert success["random-gcp-project.dbt_test1.test_second_dbt_model"][0] is False
    assert_valid_response(listing, "/namespaces/{namespace}/datasets")


def test_metrics_and_assertions_of_one_input_are_both_served(api, lambda_context, pipeline) -> None:
    # Given the fluentd proxy's full event (metrics and assertions on its input), with its START
    pipeline.send(*fluentd_full_run())
    # When its input is read; Then both facets are there
    _, dataset = get(api, lambda_context, dataset_path("my-datasource-namespace", "instance.schema.table"))
    assert set(dataset["facets"]) == {"dataQualityAssertions", "dataQualityMetrics"}
    assert dataset["dataQuality"]["metrics"]["rowCount"] == 1000


def test_a_newer_run_replaces_the_report_and_an_older_run_merged_late_does_not(api, lambda_context, pipeline) -> None:
    # Given the test run at its template time, then a later run whose first assertion failed
    pipeline.send(*dbt_test_run("test_third_dbt_model"))
    later = failing(dbt_test_run("test_third_dbt_model", run_id=LATER_RUN, start="2021-08-26T11:00:00Z",
                                 end="2021-08-26T11:00:30Z"))  # fmt: skip
    pipeline.send(*later)
    _, dataset = get(api, lambda_context, dataset_path(NS, MODEL))
    assert (
        dataset["dataQuality"]["runId"] == LATER_RUN
        and dataset["facets"]["dataQualityAssertions"]["assertions"][0]["success"] is False
    )
    # When a run from between the two is merged late, all assertions passing
    earlier = dbt_test_run("test_third_dbt_model", run_id=EARLIER_RUN, start="2021-08-25T12:00:00Z",
                           end="2021-08-25T12:00:30Z")  # fmt: skip
    (late,) = pipeline.send(*earlier)
    # Then its report is not written over the newer one (the run itself is merged)
    assert late.status == "merged" and late.skipped_newer == 1
    _, dataset = get(api, lambda_context, dataset_path(NS, MODEL))
    assert (
        dataset["dataQuality"]["runId"] == LATER_RUN
        and dataset["facets"]["dataQualityAssertions"]["assertions"][0]["success"] is False
    )


def test_a_run_without_data_quality_facets_writes_no_data_quality_item(api, lambda_context, pipeline) -> None:
    # Given a Marquez seed run (no data-quality facets), merged
    events = seed_run("etl_menus")
    (outcome,) = pipeline.send(*events)
    # Then none of its datasets has a data-quality item, and the dataset answer has no facets or dataQuality
    assert outcome.status == "merged"
    datasets = {(d["namespace"], d["name"]) for e in events for d in [*e.get("inputs", []), *e.get("outputs", [])]}
    assert datasets
    for namespace, name in sorted(datasets):
        assert quality_item(pipeline, namespace, name) is None
        _, dataset = get(api, lambda_context, dataset_path(namespace, name))
        assert dataset["facets"] == {} and "dataQuality" not in dataset


def test_merging_the_same_run_again_writes_no_second_report(pipeline) -> None:
    # Given the test run merged once
    events = dbt_test_run("test_third_dbt_model")
    pipeline.send(*events)
    stored = quality_item(pipeline, NS, MODEL)
    # When the same run is merged again (a replay, the CLI)
    outcome = pipeline.service.merge_run("dbt-test-namespace", events[0]["job"]["name"], events[0]["run"]["runId"])
    # Then nothing is written: the run is unchanged, and its report with it
    assert outcome.written == 0 and outcome.unchanged >= 1
    assert quality_item(pipeline, NS, MODEL) == stored
