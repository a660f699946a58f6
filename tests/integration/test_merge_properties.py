"""Property: the lineage records do not depend on arrival order, duplicates, or how records are batched.

Families of real runs from the corpus (a Marquez seed run with a late RUNNING event that replaces its column
lineage, the listener run, a dbt parent with its children and grandchildren, a Flink streaming run, two runs
of one job) are sent in any order, with any number of duplicates, cut into stream batches anywhere, each batch
merged as the stream consumer merges it. Whatever hypothesis draws, the Lineage table ends up identical (merge
times and the version markers of shared records aside, see ``Pipeline.snapshot``) to the one that merging the
same runs in event-time order gives. Each example runs on moto, so the example count is kept small.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lineage_intake.merge import merge_run, ordered
from moto import mock_aws

from tests.helpers.aws import use_fake_aws_credentials
from tests.helpers.pipeline import Pipeline, fresh_pipeline
from tests.helpers.runs import dbt_family, flink_streaming_run, listener_run, seed_run, stored


def _late_column_lineage_run() -> list[dict[str, Any]]:
    """etl_orders_7_days with a RUNNING event between START and COMPLETE that replaces the column lineage."""
    start, complete = seed_run("etl_orders_7_days")
    running = copy.deepcopy(start) | {"eventType": "RUNNING", "eventTime": "2020-02-22T22:43:00.000Z"}
    facet = running["outputs"][0]["facets"]["columnLineage"]
    facet["fields"] = {k: v for k, v in facet["fields"].items() if k in ("menu_id", "order_id")}
    running["outputs"].append({"namespace": "food_delivery", "name": "public.orders_7_days_audit"})
    return [start, running, complete]


def _two_runs_of_one_job() -> list[dict[str, Any]]:
    first = seed_run("etl_menus")
    second = copy.deepcopy(first)
    for event, when in zip(second, ("2020-02-23T22:42:42.000Z", "2020-02-23T22:45:52.000Z"), strict=True):
        event["run"]["runId"] = "11111111-2222-4333-8444-555555555555"
        event["eventTime"] = when
    second[0]["outputs"][0]["name"] = "public.menus_v2"
    return first + second


RUNS: dict[str, list[dict[str, Any]]] = {
    "late column lineage": _late_column_lineage_run(),
    "listener": listener_run(),
    "dbt family": dbt_family(),
    "flink": flink_streaming_run("6b1f4c7e-8d02-4a55-9f0e-3c2d1b0a9e02", checkpoints=2),
    "two runs of one job": _two_runs_of_one_job(),
}
_prefixes = itertools.count()
_expected: dict[tuple[str, ...], dict[tuple[str, str], dict[str, Any]]] = {}


@pytest.fixture(scope="module")
def session() -> Iterator[boto3.Session]:
    """One moto account for the module; every example gets its own tables (a fresh stack prefix)."""
    with pytest.MonkeyPatch.context() as patch:
        use_fake_aws_credentials(patch)
        with mock_aws():
            yield boto3.Session(region_name="us-east-1")


def new_pipeline(session: boto3.Session) -> Pipeline:
    return fresh_pipeline(session, f"prop{next(_prefixes)}")


def expected_tables(session: boto3.Session, chosen: tuple[str, ...]) -> dict[tuple[str, str], dict[str, Any]]:
    """The Lineage table after the chosen runs arrive in event-time order, merged in one batch."""
    if chosen not in _expected:
        pipeline = new_pipeline(session)
        events = [e for name in chosen for e in RUNS[name]]
        pipeline.send(*sorted(events, key=lambda e: stored(e).event_time))
        _expected[chosen] = pipeline.snapshot(versions=False)
    return _expected[chosen]


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[tuple[str, ...], list[dict[str, Any]], list[bool]]:
    """A family of runs; its events in any order, each sent one to three times; where the stream batches end."""
    chosen = (draw(st.sampled_from(sorted(RUNS))),)
    events = [e for name in chosen for e in RUNS[name]]
    copies = [draw(st.integers(min_value=1, max_value=3)) for _ in events]
    sent = draw(st.permutations([e for e, n in zip(events, copies, strict=True) for _ in range(n)]))
    cuts = draw(st.lists(st.booleans(), min_size=len(sent), max_size=len(sent)))
    return chosen, sent, cuts


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=arrivals())
# A streaming run's events last-first, one batch each: its datasets' createdAt once followed the first merge
@example(case=(("flink",), list(reversed(RUNS["flink"])), [True] * len(RUNS["flink"])))
def test_the_lineage_tables_do_not_depend_on_arrival_order_duplicates_or_batching(
    session: boto3.Session, case: tuple[tuple[str, ...], list[dict[str, Any]], list[bool]]
) -> None:
    chosen, sent, cuts = case
    expected = expected_tables(session, chosen)
    pipeline = new_pipeline(session)
    # When the events arrive in the drawn order, and each batch of stream records is merged
    pending = 0
    for event, cut in zip(sent, cuts, strict=True):
        pipeline.store(event)
        pending += 1
        if cut:
            pipeline.deliver(pipeline.filtered(pipeline.new_records()))
            pending = 0
    if pending:
        pipeline.deliver(pipeline.filtered(pipeline.new_records()))
    # Then every record is the one that the in-order merge gives, and there is no other
    assert pipeline.snapshot(versions=False) == expected


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_a_merge_that_read_more_events_of_a_run_has_a_greater_version(data: st.DataObject) -> None:
    # Given any run and any two nested subsets of its events (what two merges could have read)
    name = data.draw(st.sampled_from(sorted(RUNS)))
    events = [stored(e) for e in RUNS[name]]
    run_ids = sorted({e.body["run"]["runId"] for e in events})
    run_id = data.draw(st.sampled_from(run_ids))
    events = [e for e in events if e.body["run"]["runId"] == run_id]
    larger = data.draw(st.sets(st.sampled_from(range(len(events))), min_size=2))
    smaller = data.draw(st.sets(st.sampled_from(sorted(larger)), min_size=1, max_size=len(larger) - 1))
    older = merge_run(ordered(events[i] for i in smaller))
    newer = merge_run(ordered(events[i] for i in larger))
    # Then the conditional writes order them: the merge that read more events wins
    assert older is not None and newer is not None
    assert older.merge_version < newer.merge_version
