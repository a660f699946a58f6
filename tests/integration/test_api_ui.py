"""The endpoints Marquez's web UI adds to the read API (issue 14), through the read function on moto: the
Marquez food_delivery seed moved to now (so the stats windows hold it), a tagged job, and a second schema."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from lineage_intake_tools.local.template import Stack

from tests.helpers.corpus import corpus_json, event_file
from tests.helpers.marquez_schema import assert_valid_component, assert_valid_response
from tests.helpers.pipeline import Pipeline
from tests.helpers.ui_seed import COLUMN_LINEAGE, DATASET_TAGS, FACET, ui_fields_run

SEED = "marquez/docker/metadata.json"
NS = "food_delivery"
TAGS = {
    "_producer": "https://example.com/tests",
    "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/TagsJobFacet.json",
    "tags": [{"key": "pii", "value": "true", "source": "CONFIG"}, {"key": "tier", "value": "gold"}],
}


@pytest.fixture
def seeded(stack: Stack, aws: boto3.Session) -> list[dict[str, Any]]:
    """The seed with its times moved to the last half hour and a tags facet on etl_orders_7_days."""
    events = copy.deepcopy(corpus_json(SEED))
    base = datetime.now(UTC) - timedelta(minutes=30)
    for index, event in enumerate(events):
        event["eventTime"] = (base + timedelta(seconds=index)).isoformat().replace("+00:00", "Z")
        if event["job"]["name"] == "etl_orders_7_days":
            event["job"].setdefault("facets", {})["tags"] = TAGS
    Pipeline(aws, stack).send(*events)
    return events


def call(api: ModuleType, context: Any, path: str, query: str = "", method: str = "GET") -> tuple[int, Any]:
    """A request through the handler, shaped like an HTTP API payload 2.0 request; ``query`` is sent raw."""
    request = copy.deepcopy(event_file("ingest-start.json"))
    request.update(body=None, isBase64Encoded=False, rawPath=path, rawQueryString=query)
    request["routeKey"] = request["requestContext"]["routeKey"] = f"{method} /api/v1/{{proxy+}}"
    request["requestContext"]["http"].update(method=method, path=path)
    request["headers"].pop("content-type", None)
    request["requestContext"]["authorizer"]["lambda"]["scopes"] = '["read"]'
    answer = api.handler(request, context)
    return answer["statusCode"], json.loads(answer["body"])


def test_tags_facets_become_the_tag_list_and_the_job_tags(api, lambda_context, seeded) -> None:
    # Given a job whose events carry a tags facet; When /tags and the job are read
    status, tags = call(api, lambda_context, "/api/v1/tags")
    _, job = call(api, lambda_context, f"/api/v1/namespaces/{NS}/jobs/etl_orders_7_days")
    # Then each tag is listed once by name (key, or key:value), and the job carries them
    assert status == 200
    assert [t["name"] for t in tags["tags"]] == ["pii", "tier:gold"]
    assert "CONFIG" in tags["tags"][0]["description"]
    assert job["tags"] == ["pii", "tier:gold"]
    assert_valid_response(tags, "/tags")


def test_lineage_event_stats_count_the_seed_in_the_current_day(api, lambda_context, seeded) -> None:
    # Given the seed's events in the last half hour; When the DAY stats are read in a named zone
    status, buckets = call(api, lambda_context, "/api/v1/stats/lineage-events", "period=DAY&timezone=Europe/Paris")
    # Then there are 24 hourly buckets, oldest first, in that zone, holding every START and COMPLETE
    assert status == 200 and isinstance(buckets, list) and len(buckets) == 24
    assert all(b["startInterval"] < b["endInterval"] for b in buckets)
    assert buckets[-1]["startInterval"].endswith(("+01:00", "+02:00"))
    starts = sum(1 for e in seeded if e["eventType"] == "START")
    completes = sum(1 for e in seeded if e["eventType"] == "COMPLETE")
    assert sum(b["start"] for b in buckets) == starts
    assert sum(b["complete"] for b in buckets) == completes
    assert sum(b["fail"] + b["abort"] for b in buckets) == 0


def test_job_dataset_and_source_stats_count_what_ran_per_week_day(api, lambda_context, seeded) -> None:
    # Given the seed; When the WEEK stats are read in UTC
    _, jobs = call(api, lambda_context, "/api/v1/stats/jobs", "period=WEEK&timezone=UTC")
    _, datasets = call(api, lambda_context, "/api/v1/stats/datasets", "period=WEEK&timezone=UTC")
    _, sources = call(api, lambda_context, "/api/v1/stats/sources", "period=WEEK&timezone=UTC")
    # Then 7 daily buckets; the seed's jobs, its datasets and its one source are counted in the last day or two
    names = {e["job"]["name"] for e in seeded}
    assert len(jobs) == len(datasets) == len(sources) == 7
    assert sum(b["count"] for b in jobs) >= len(names) and max(b["count"] for b in jobs) <= len(names)
    assert max(b["count"] for b in datasets) > 0
    assert max(b["count"] for b in sources) == 1


def test_bad_stats_parameters_are_400_naming_the_parameter(api, lambda_context, seeded) -> None:
    for query, name in (("period=MONTH", "period"), ("period=DAY&timezone=Mars/Olympus", "timezone")):
        status, body = call(api, lambda_context, "/api/v1/stats/jobs", query)
        assert status == 400 and body["message"].startswith(name), body


def test_all_jobs_are_paged_and_filtered_by_their_latest_run_state(api, lambda_context, seeded) -> None:
    # Given the seed's jobs (all completed); When /jobs is read with and without a state filter
    _, page = call(api, lambda_context, "/api/v1/jobs", "limit=10&offset=0")
    _, done = call(api, lambda_context, "/api/v1/jobs", "limit=10&offset=0&lastRunStates=COMPLETED")
    _, failed = call(api, lambda_context, "/api/v1/jobs", "limit=10&offset=0&lastRunStates=FAILED")
    status, bad = call(api, lambda_context, "/api/v1/jobs", "lastRunStates=SLEEPING")
    # Then the dashboard's fields are there: totalCount, latestRun and latestRuns of each row
    names = sorted({e["job"]["name"] for e in seeded})
    assert page["totalCount"] == done["totalCount"] == len(names)
    assert [j["name"] for j in page["jobs"]] == names[:10]
    assert all(j["latestRun"]["state"] == "COMPLETED" and j["latestRuns"] for j in page["jobs"])
    assert failed == {"jobs": [], "totalCount": 0}
    assert status == 400 and bad["message"].startswith("lastRunStates")
    assert_valid_response(page, "/namespaces/{namespace}/jobs")


def test_dataset_versions_are_one_per_distinct_schema_with_their_run(api, lambda_context, seeded, stack, aws) -> None:
    # Given a dataset written again with one more column
    start = next(e for e in seeded if e["job"]["name"] == "etl_orders_7_days" and e["eventType"] == "START")
    again = copy.deepcopy(start)
    again["run"]["runId"] = str(uuid.uuid4())
    again["eventTime"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    again["eventType"] = "COMPLETE"
    fields = again["outputs"][0]["facets"]["schema"]["fields"]
    fields.append({"name": "added_column", "type": "INTEGER"})
    Pipeline(aws, stack).send({**again, "eventType": "START"}, again)
    # When its versions and the dataset are read
    path = f"/api/v1/namespaces/{NS}/datasets/public.orders_7_days"
    status, versions = call(api, lambda_context, path + "/versions")
    _, dataset = call(api, lambda_context, path)
    # Then two versions, newest first; the newest is the dataset's current version, made by the new run
    assert status == 200 and versions["totalCount"] == 2
    newest = versions["versions"][0]
    assert newest["version"] == dataset["currentVersion"]
    assert newest["createdByRun"]["id"] == again["run"]["runId"]
    assert [f["name"] for f in newest["fields"]][-1] == "added_column"
    assert "added_column" not in [f["name"] for f in versions["versions"][1]["fields"]]
    assert_valid_response(versions, "/namespaces/{namespace}/datasets/{dataset}/versions")


def test_the_job_drawer_reads_parent_latest_run_facets_and_latest_runs(api, lambda_context, seeded) -> None:
    _, job = call(api, lambda_context, f"/api/v1/namespaces/{NS}/jobs/etl_orders_7_days")
    assert isinstance(job["latestRun"]["facets"], dict) and job["latestRun"]["facets"]
    assert all({"state", "endedAt", "durationMs"} <= set(r) for r in job["latestRuns"])
    assert_valid_component(job, "Job")


def test_writes_the_ui_offers_are_refused_with_403_and_why(api, lambda_context, seeded) -> None:
    for method, path in (
        ("DELETE", f"/api/v1/namespaces/{NS}/jobs/etl_orders_7_days"),
        ("DELETE", f"/api/v1/namespaces/{NS}/datasets/public.orders"),
        ("POST", f"/api/v1/namespaces/{NS}/datasets/public.orders/tags/pii"),
        ("DELETE", f"/api/v1/namespaces/{NS}/jobs/etl_orders_7_days/tags/pii"),
        ("PUT", "/api/v1/tags/pii"),
    ):
        status, body = call(api, lambda_context, path, method=method)
        assert status == 403 and "read-only" in body["message"], (method, path, body)
    _, job = call(api, lambda_context, f"/api/v1/namespaces/{NS}/jobs/etl_orders_7_days")
    assert job["name"] == "etl_orders_7_days"


def test_search_takes_a_raw_q_with_spaces_and_percent(api, lambda_context, seeded) -> None:
    for query in ("q=orders 7&sort=NAME&limit=100", "q=100%&sort=UPDATE_AT&limit=100&filter=JOB", "q=orders_7"):
        status, body = call(api, lambda_context, "/api/v1/search", query)
        assert status == 200, (query, body)
    _, hits = call(api, lambda_context, "/api/v1/search", "q=orders_7&sort=NAME&limit=100&filter=DATASET")
    assert [r["nodeId"] for r in hits["results"]] == [f"dataset:{NS}:public.orders_7_days"]


def test_the_events_page_query_with_a_far_future_before_is_answered(api, lambda_context, seeded) -> None:
    after = seeded[0]["eventTime"][:19] + ".000Z"
    query = f"limit=50&before=2999-01-01T00:00:00.000Z&after={after}&offset=0&sortDirection=desc"
    # Given the seed of the last half hour; When the events page asks with before far in the future
    status, body = call(api, lambda_context, "/api/v1/events/lineage", query)
    # Then the window ends a day after now, so every seed event is listed, newest first
    assert status == 200, body
    assert body["totalCount"] == len(seeded) and body["events"][0]["eventTime"] == seeded[-1]["eventTime"]


def ui_run(run_id: str, when: datetime, output_facets: dict[str, Any]) -> list[dict[str, Any]]:
    return ui_fields_run(NS, "ui_fields_job", NS, run_id, when, output_facets)


def test_dataset_tags_column_lineage_and_lifecycle_reach_the_ui_fields(api, lambda_context, stack, aws) -> None:
    # Given a run whose output carries tags, columnLineage and lifecycleStateChange facets
    when = datetime.now(UTC) - timedelta(minutes=5)
    facets = {
        "tags": DATASET_TAGS,
        "columnLineage": COLUMN_LINEAGE,
        "lifecycleStateChange": {**FACET, "lifecycleStateChange": "CREATE"},
    }
    Pipeline(aws, stack).send(*ui_run(str(uuid.uuid4()), when, facets))
    # When the UI reads the dataset listing, the dataset, its versions and the tag list
    _, rows = call(api, lambda_context, f"/api/v1/namespaces/{NS}/datasets", "limit=20&offset=0")
    _, dataset = call(api, lambda_context, f"/api/v1/namespaces/{NS}/datasets/public.ui_fields")
    _, versions = call(api, lambda_context, f"/api/v1/namespaces/{NS}/datasets/public.ui_fields/versions")
    _, tags = call(api, lambda_context, "/api/v1/tags")
    # Then the row has a truthy columnLineage naming the derived field, and the dataset's tags
    row = next(r for r in rows["datasets"] if r["name"] == "public.ui_fields")
    assert [c["name"] for c in row["columnLineage"]] == ["total"]
    assert row["tags"] == dataset["tags"] == ["domain:sales", "pii"]
    assert {"domain:sales", "pii"} <= {t["name"] for t in tags["tags"]}
    # And the dataset's own GET has the inputs; its version has the lifecycle state; its times are the run's
    assert dataset["columnLineage"][0]["inputFields"][0]["field"] == "order_id"
    assert versions["versions"][0]["lifecycleState"] == "CREATE"
    assert versions["versions"][0]["tags"] == ["domain:sales", "pii"]
    assert dataset["createdAt"].startswith(when.strftime("%Y-%m-%dT%H:%M"))
    assert dataset["updatedAt"] >= dataset["createdAt"]
    assert_valid_response(rows, "/namespaces/{namespace}/datasets")
    assert_valid_response(versions, "/namespaces/{namespace}/datasets/{dataset}/versions")
    assert_valid_component(dataset, "Dataset")


def test_a_version_without_a_lifecycle_facet_has_a_null_lifecycle_state(api, lambda_context, stack, aws) -> None:
    # Given a run whose output has no lifecycleStateChange facet; When its versions are read
    Pipeline(aws, stack).send(*ui_run(str(uuid.uuid4()), datetime.now(UTC) - timedelta(minutes=5), {}))
    _, versions = call(api, lambda_context, f"/api/v1/namespaces/{NS}/datasets/public.ui_fields/versions")
    _, rows = call(api, lambda_context, f"/api/v1/namespaces/{NS}/datasets", "limit=20&offset=0")
    # Then lifecycleState is absent (null, as Marquez), and a row without column lineage has none
    assert versions["versions"][0].get("lifecycleState") is None
    row = next(r for r in rows["datasets"] if r["name"] == "public.ui_fields")
    assert row.get("columnLineage") is None and row["tags"] == []


def test_dataset_tags_follow_a_changed_tags_facet_and_survive_a_run_without_one(
    api, lambda_context, stack, aws
) -> None:
    pipeline = Pipeline(aws, stack)
    base = datetime.now(UTC) - timedelta(minutes=10)
    # Given a dataset tagged by a first run, then retagged by a second run with the same schema
    pipeline.send(*ui_run(str(uuid.uuid4()), base, {"tags": DATASET_TAGS}))
    retagged = {**FACET, "tags": [{"key": "tier", "value": "gold"}]}
    pipeline.send(*ui_run(str(uuid.uuid4()), base + timedelta(minutes=1), {"tags": retagged}))
    _, after_change = call(api, lambda_context, f"/api/v1/namespaces/{NS}/datasets/public.ui_fields")
    # When a third run reports the dataset without a tags facet
    pipeline.send(*ui_run(str(uuid.uuid4()), base + timedelta(minutes=2), {}))
    _, after_silence = call(api, lambda_context, f"/api/v1/namespaces/{NS}/datasets/public.ui_fields")
    # Then the tags are the second run's, and a run that says nothing of tags leaves them
    assert after_change["tags"] == ["tier:gold"]
    assert after_silence["tags"] == ["tier:gold"]


def test_a_job_without_datasets_is_created_at_its_first_run_not_1970(api, lambda_context, stack, aws) -> None:
    # Given a job whose only run reports no datasets (a dbt parent job)
    start, complete = ui_run(str(uuid.uuid4()), datetime.now(UTC) - timedelta(minutes=3), {})
    for event in (start, complete):
        event["job"]["name"] = "ui_parent_job"
        event["inputs"] = event["outputs"] = []
    Pipeline(aws, stack).send(start, complete)
    # When the dashboard reads it
    _, job = call(api, lambda_context, f"/api/v1/namespaces/{NS}/jobs/ui_parent_job")
    # Then its creation time is its run's, and it was not updated before it was created
    assert job["createdAt"] == job["latestRun"]["createdAt"] and not job["createdAt"].startswith("1970")
    assert job["updatedAt"] >= job["createdAt"]
