"""Read API limits on moto (issue 10): job listing rows carry their latest run, and the graph walk spends at
most one DynamoDB request per node it returns (docs/read-api.md "Requests per node")."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from lineage_intake_tools.local.template import Stack

from tests.helpers.api_request import api_get as get
from tests.helpers.corpus import corpus_json
from tests.helpers.marquez_schema import assert_valid_response
from tests.helpers.pipeline import Pipeline

SEED = "marquez/docker/metadata.json"
NS = "food_delivery"


@pytest.fixture
def seeded(stack: Stack, aws: boto3.Session) -> list[dict[str, Any]]:
    events = corpus_json(SEED)
    Pipeline(aws, stack).send(*events)
    return events


def test_job_listing_rows_carry_their_latest_run(api, lambda_context, seeded) -> None:
    # Given the food_delivery seed merged (one run per job)
    runs = {e["job"]["name"]: e["run"]["runId"] for e in seeded if e["eventType"] == "START"}
    # When a page of the namespace's jobs is listed
    status, jobs = get(api, lambda_context, f"/api/v1/namespaces/{NS}/jobs", {"limit": 4, "offset": 3})
    # Then each row's latestRun is that job's run, with its state, and the answer is Marquez's shape
    assert status == 200 and len(jobs["jobs"]) == 4
    for job in jobs["jobs"]:
        assert job["latestRun"]["id"] == runs[job["name"]]
        assert job["latestRun"]["state"] in ("COMPLETED", "FAILED")
    assert_valid_response(jobs, "/namespaces/{namespace}/jobs")


class _Requests:
    def __init__(self, client: Any) -> None:
        self.count = 0
        client.meta.events.register("before-send.dynamodb.*", self._sent)

    def _sent(self, **_: Any) -> None:
        self.count += 1


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_the_graph_walk_spends_at_most_one_request_per_node(api, lambda_context, seeded, depth) -> None:
    # Given the seed and a counter on the read function's DynamoDB client
    counter = _Requests(api._services()[0].lineage.dynamodb)
    # When the graph around a job in the middle of the seed is walked
    status, graph = get(
        api, lambda_context, "/api/v1/lineage", {"nodeId": f"job:{NS}:etl_orders_7_days", "depth": depth}
    )
    # Then the walk read at most one request per node of the answer
    assert status == 200 and graph["graph"]
    assert counter.count <= len(graph["graph"]), (counter.count, len(graph["graph"]))
