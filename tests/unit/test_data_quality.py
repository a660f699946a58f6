"""Data quality (issue 10): which facets a run reports per dataset, and how the read side shows the latest.

The runs come from the fixture corpus (``tests.helpers.quality``); the stored item is ``store.lineage_quality``.
"""

from __future__ import annotations

from lineage_intake import facets
from lineage_intake.lineage import Ref
from lineage_intake.service.read_views import dataset_view
from lineage_intake.store.lineage_quality import QUALITY_SK, quality_item

from tests.helpers.quality import assertions_of, dbt_test_run, fluentd_full_run
from tests.helpers.runs import merged, seed_run

MODEL = Ref("bigquery", "random-gcp-project.dbt_test1.test_third_dbt_model")


def test_a_dbt_test_run_reports_the_assertions_of_the_dataset_it_tested() -> None:
    # Given dbt's test run of test_third_dbt_model (assertions on its COMPLETE event's input)
    events = dbt_test_run("test_third_dbt_model")
    # When it is merged
    run = merged(events)
    # Then the run reports that dataset's assertions verbatim, and nothing else
    assert run.data_quality == ((MODEL, {"dataQualityAssertions": assertions_of(events[1])}),)


def test_metrics_and_assertions_are_both_kept_from_one_input() -> None:
    # Given the fluentd proxy's full event: an input with dataQualityMetrics and dataQualityAssertions
    events = fluentd_full_run()
    # When merged; Then both facets are reported for the input dataset
    ((ref, found),) = merged(events).data_quality
    assert ref == Ref("my-datasource-namespace", "instance.schema.table")
    assert found["dataQualityMetrics"]["rowCount"] == 1000
    assert [a["assertion"] for a in found["dataQualityAssertions"]["assertions"]] == [
        "row_count_equal_to",
        "no_null_values",
    ]


def test_a_run_without_data_quality_facets_reports_none() -> None:
    # Given a Marquez seed run (schemas, no data-quality facets); When merged; Then it reports no data quality
    assert merged(seed_run("etl_menus")).data_quality == ()


def test_input_facets_win_over_dataset_facets_and_malformed_ones_are_skipped() -> None:
    # Given the same facet as a dataset facet and as an input facet, and malformed ones
    as_dataset = {"dataQualityAssertions": {"assertions": [{"assertion": "a", "success": False}]}}
    as_input = {"dataQualityAssertions": {"assertions": [{"assertion": "b", "success": True}]}}
    malformed = {"dataQualityAssertions": {"assertions": ["not an object"]}, "dataQualityMetrics": {}}
    # When read in the order the merge reads them (facets, then inputFacets)
    found = facets.data_quality(as_dataset, as_input, malformed)
    # Then the input facet wins and the malformed ones change nothing
    assert found == as_input


def test_the_latest_report_is_served_as_marquez_facets_and_as_the_data_quality_summary() -> None:
    # Given a dataset item and the data-quality item of the dbt test run
    run = merged(dbt_test_run("test_third_dbt_model"))
    ((ref, found),) = run.data_quality
    item = quality_item(run, ref, found)
    dataset = {"type": "dataset", "namespace": ref.namespace, "name": ref.name, "partial": True}
    # When the dataset is shown
    view = dataset_view(dataset, quality=item).dump()
    # Then Marquez's facets hold the facet verbatim and dataQuality says which run reported it, when
    assert item["sk"] == QUALITY_SK and item["reportedAt"] == run.last_event_time
    assert view["facets"] == {"dataQualityAssertions": found["dataQualityAssertions"]}
    assert view["dataQuality"]["runId"] == run.run_id
    assert [a["success"] for a in view["dataQuality"]["assertions"]] == [True, True, True, True]
    # And a dataset without a report has no facets and no dataQuality
    assert "dataQuality" not in dataset_view(dataset).dump() and dataset_view(dataset).dump()["facets"] == {}


def test_a_report_too_big_for_an_item_keeps_its_run_and_says_the_facets_were_left_out() -> None:
    # Given a run whose assertions would not fit in a DynamoDB item
    run = merged(dbt_test_run("test_third_dbt_model"))
    huge = {"dataQualityAssertions": {"assertions": [{"assertion": "x" * 1000, "success": True}] * 400}}
    # When its item is built; Then the facets are left out and marked, the run and time kept
    item = quality_item(run, MODEL, huge)
    assert item["facets"] == {} and item["facetsTruncated"] is True and item["runId"] == run.run_id
