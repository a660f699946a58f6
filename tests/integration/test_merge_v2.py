"""Merge v2 (issue 9) on moto: stable job lineage with history, START-less runs after the grace period, datasets
named only by column lineage, and the streaming merge whose work per event stays constant (docs/merge.md)."""

from __future__ import annotations

import copy
from typing import Any

from lineage_intake.store.catalog import CatalogStore
from lineage_intake.store.lineage_items import CHECKPOINT_EVERY

from tests.helpers.pipeline import Pipeline
from tests.helpers.runs import at, dbt_family, flink_streaming_run, seed_run

NS = "food_delivery"


def rerun(events: list[dict[str, Any]], run_id: str, *times: str) -> list[dict[str, Any]]:
    """The same job's events as another run, at other times."""
    out = [copy.deepcopy(e) for e in events]
    for event, when in zip(out, times, strict=True):
        event["run"]["runId"] = run_id
        event["eventTime"] = when
    return out


def names(edges: list[dict[str, Any]], current: bool = True) -> list[str]:
    return sorted(e["dataset"]["name"] for e in edges if bool(e.get("current", True)) == current)


def jobs(edges: list[dict[str, Any]], current: bool = True) -> list[str]:
    return sorted(e["job"]["name"] for e in edges if bool(e.get("current", True)) == current)


# ================================================================================== stable job lineage
def test_a_failing_run_without_datasets_leaves_the_job_and_dataset_lineage_as_it_was(pipeline: Pipeline) -> None:
    # Given a merged run of etl_menus that read public.menus_1 and wrote public.menus
    pipeline.send(*seed_run("etl_menus"))
    edges_before = pipeline.lineage.job_edges(NS, "etl_menus")
    menus_before = pipeline.lineage.dataset_lineage(NS, "public.menus")
    assert jobs(menus_before["upstream"]) == ["etl_menus"]
    # When a later run of the job fails before planning: START and FAIL without inputs or outputs
    start, complete = seed_run("etl_menus")
    failed = rerun([start, complete], "22222222-2222-4222-8222-222222222222", at(10), at(20))
    for event in failed:
        event.pop("inputs", None)
        event.pop("outputs", None)
    failed[1]["eventType"] = "FAIL"
    (outcome,) = pipeline.send(*failed)
    # Then the run is merged as FAIL and is the job's latest run, but nothing of the job's lineage changed
    assert outcome.status == "merged" and outcome.state == "FAIL" and outcome.written == 1
    latest = pipeline.lineage.list_runs(NS, "etl_menus", limit=1)[0]
    assert latest["runId"] == failed[0]["run"]["runId"] and latest["hasLineage"] is False
    assert pipeline.lineage.job_edges(NS, "etl_menus") == edges_before
    menus = pipeline.lineage.dataset_lineage(NS, "public.menus")
    assert jobs(menus["upstream"]) == ["etl_menus"] and menus == menus_before
    # And the current edges were last seen at the last event of the run that reported them
    assert pipeline.lineage.lineage_last_seen(NS, "etl_menus") == "2020-02-22T22:45:52.000000Z"


def test_a_later_run_with_other_datasets_moves_the_old_edges_to_history(pipeline: Pipeline) -> None:
    # Given a merged run that wrote public.menus
    first = seed_run("etl_menus")
    pipeline.send(*first)
    # When a later run writes public.menus_v2 instead
    second = rerun(first, "33333333-3333-4333-8333-333333333333", at(10), at(20))
    second[0]["outputs"][0]["name"] = "public.menus_v2"
    (outcome,) = pipeline.send(*second)
    # Then the job's current output is menus_v2, and public.menus is history: not current, first and last
    # seen in the first run, never deleted
    assert outcome.lineage_changed
    outputs = pipeline.lineage.job_edges(NS, "etl_menus")["outputs"]
    assert names(outputs) == ["public.menus_v2"] and names(outputs, current=False) == ["public.menus"]
    (old,) = [e for e in outputs if not e["current"]]
    first_id = first[0]["run"]["runId"]
    assert old["firstRun"] == old["lastRun"] == first_id
    assert old["firstSeen"] == "2020-02-22T22:42:42.000000Z" and old["lastSeen"] == "2020-02-22T22:45:52.000000Z"
    # And the dataset shows the job as a former writer only
    menus = pipeline.lineage.dataset_lineage(NS, "public.menus")
    assert jobs(menus["upstream"]) == [] and jobs(menus["upstream"], current=False) == ["etl_menus"]
    # When a third run writes public.menus again, the edge is current again and keeps its first sighting
    third = rerun(first, "44444444-4444-4444-8444-444444444444", at(30), at(40))
    pipeline.send(*third)
    outputs = pipeline.lineage.job_edges(NS, "etl_menus")["outputs"]
    assert names(outputs) == ["public.menus"] and names(outputs, current=False) == ["public.menus_v2"]
    (menus_edge,) = [e for e in outputs if e["current"]]
    assert menus_edge["firstRun"] == first_id and "lastSeen" not in menus_edge


def test_a_steady_state_run_writes_only_its_run_item(pipeline: Pipeline) -> None:
    # Given a job merged once
    first = seed_run("etl_orders_7_days")
    pipeline.send(*first)
    before = pipeline.snapshot()
    # When the same job runs again over the same datasets
    again = rerun(first, "55555555-5555-4555-8555-555555555555", at(10), at(20))
    outcomes = pipeline.send(*again)
    # Then one item was written (the new run's), and every other item is as it was
    assert [o.written for o in outcomes if o.status == "merged"] == [1]
    after = pipeline.snapshot()
    assert {k: v for k, v in after.items() if k not in before} == {
        k: v for k, v in after.items() if v.get("runId") == again[0]["run"]["runId"] and v.get("type") == "run"
    }
    assert all(after[k] == v for k, v in before.items())


# ================================================================================== START-less runs
def test_a_start_less_fail_is_merged_after_the_grace_period_and_listed_by_its_parent(pipeline: Pipeline) -> None:
    # Given a dbt family whose parent run is merged, and one child that sent only its FAIL
    family = dbt_family()
    child_job = next(e["job"]["name"] for e in family if e["run"].get("facets", {}).get("parent"))
    child_events = [e for e in family if e["job"]["name"] == child_job]
    others = [e for e in family if e["job"]["name"] != child_job]
    pipeline.send(*others)
    (start,) = [e for e in child_events if e["eventType"] == "START"]
    terminal = copy.deepcopy([e for e in child_events if e["eventType"] in ("COMPLETE", "FAIL")][-1])
    terminal["eventType"] = "FAIL"
    # When the FAIL arrives alone
    (waiting,) = pipeline.send(terminal)
    # Then the run waits for its START and is sent to the grace queue, once
    assert waiting.status == "awaiting_start" and len(pipeline.grace.sent) == 1
    parent = terminal["run"]["facets"]["parent"]
    parent_ns, parent_job, parent_id = parent["job"]["namespace"], parent["job"]["name"], parent["run"]["runId"]
    assert child_job not in [c["job"] for c in pipeline.lineage.run_children(parent_ns, parent_job, parent_id)]
    # When the grace period is over
    (graced,) = pipeline.expire_grace()
    # Then the run is merged from what it has: FAIL, startMissing, listed among its parent's children
    assert graced.status == "merged" and graced.state == "FAIL" and graced.start_missing
    run = pipeline.lineage.get_run(terminal["job"]["namespace"], child_job, terminal["run"]["runId"])
    assert run is not None and run["state"] == "FAIL" and run["startMissing"] is True
    assert pipeline.lineage.list_awaiting_start() == []
    children = pipeline.lineage.run_children(parent_ns, parent_job, parent_id)
    assert [(c["job"], c["state"]) for c in children if c["job"] == child_job] == [(child_job, "FAIL")]
    # When its START arrives later
    (merged,) = pipeline.send(start)
    # Then the run is merged again normally: no longer startMissing, its START time known
    assert merged.status == "merged" and not merged.start_missing
    run = pipeline.lineage.get_run(terminal["job"]["namespace"], child_job, terminal["run"]["runId"])
    assert run is not None and "startMissing" not in run and run["startTime"] is not None and run["state"] == "FAIL"


def test_a_grace_message_for_a_run_whose_start_came_changes_nothing(pipeline: Pipeline) -> None:
    start, complete = seed_run("etl_menus")
    pipeline.send(complete)
    pipeline.send(start)
    before = pipeline.snapshot()
    (outcome,) = pipeline.expire_grace()
    assert outcome.status == "merged" and not outcome.start_missing and outcome.written == 0
    assert pipeline.snapshot() == before


# ================================================================================== column lineage datasets
def test_a_seed_named_only_by_column_lineage_is_a_dataset_with_its_downstream_job(pipeline: Pipeline) -> None:
    # Given a dbt-like run whose column lineage reads a seed that is not among its inputs
    start, complete = seed_run("etl_orders_7_days")
    fields = start["outputs"][0]["facets"]["columnLineage"]["fields"]
    fields["customer_id"] = {"inputFields": [{"namespace": NS, "name": "seed.raw_customers", "field": "id"}]}
    # When it is merged
    pipeline.send(start, complete)
    # Then the seed is a (partial) dataset that the job reads
    seed = pipeline.lineage.dataset_lineage(NS, "seed.raw_customers")
    assert seed["dataset"] is not None and seed["dataset"]["partial"] is True
    assert jobs(seed["downstream"]) == ["etl_orders_7_days"]
    assert "seed.raw_customers" in names(pipeline.lineage.job_edges(NS, "etl_orders_7_days")["inputs"])


# ================================================================================== streaming
def test_a_streaming_run_merges_each_event_from_its_checkpoint_with_constant_work(pipeline: Pipeline) -> None:
    # Given a Flink (STREAMING) run of 300 events on moto, each merged on its own as a stream batch of one record
    # would (the record's eventTime is the trigger; the stream is left out to keep the test fast; 5,000-event runs:
    # tests/unit/test_merge_incremental.py, the fold alone, and test_merge_streaming.py, units per merge)
    run_id = "66666666-6666-4666-8666-666666666666"
    start, running, _ = flink_streaming_run(run_id, checkpoints=2)
    namespace, job = start["job"]["namespace"], start["job"]["name"]
    count = 300
    read_per_merge: list[int] = []
    original = pipeline.events.query_partition

    def counting(pk: str, page_size: int = 500, since: str | None = None) -> Any:
        items = list(original(pk, page_size, since))
        read_per_merge.append(len(items))
        return iter(items)

    pipeline.events.query_partition = counting  # type: ignore[method-assign]
    for i in range(count):
        event = copy.deepcopy(running) if i else start
        if i:
            event["eventTime"] = at(10 * i)
            event["run"]["facets"]["checkpoints"]["completed"] = i
        stored = pipeline.store(event)
        outcome = pipeline.service.merge_run(namespace, job, run_id, trigger_time=stored.event_time)
        assert outcome.status == "streaming"
    # Then no merge read more than the events since the last checkpoint (and the checkpoint's own instant)
    assert len(read_per_merge) == count
    assert max(read_per_merge) <= CHECKPOINT_EVERY + 1
    run = pipeline.lineage.get_run(namespace, job, run_id)
    assert run is not None and run["state"] == "RUNNING" and run["eventCount"] == count
    # And the result is the one a full re-read gives
    full = pipeline.service.fold_run(namespace, job, run_id)
    assert full is not None and full.event_count == count and full.last_event_time == run["lastEventTime"]
    assert run["outputs"] == [[r.namespace, r.name] for r in full.outputs] and run["eventTypes"] == full.event_types


def test_a_streaming_runs_time_index_key_moves_once_an_hour_and_an_hours_runs_come_newest_first(
    pipeline: Pipeline,
) -> None:
    # Given three streaming runs, each event merged on its own: A from 15:58 to 16:01:30, B and C within 15:xx
    # (C's last event later than B's)
    def stream(run_id: str, seconds: list[int]) -> list[tuple[str, str]]:
        start, running, _ = flink_streaming_run(run_id, checkpoints=2)
        namespace, job = start["job"]["namespace"], start["job"]["name"]
        time_keys = []
        for i, second in enumerate(seconds):
            event = copy.deepcopy(running) if i else copy.deepcopy(start)
            event["eventTime"] = at(second)
            if i:
                event["run"]["facets"]["checkpoints"]["completed"] = i
            stored = pipeline.store(event)
            pipeline.service.merge_run(namespace, job, run_id, trigger_time=stored.event_time)
            run = pipeline.lineage.get_run(namespace, job, run_id)
            assert run is not None
            time_keys.append((run["gsi3pk"], run["gsi3sk"]))
        return time_keys

    run_a, run_b, run_c = (f"{d * 8}-{d * 4}-4{d * 3}-8{d * 3}-{d * 12}" for d in "789")
    keys_a = stream(run_a, [30 * i for i in range(8)])
    stream(run_b, [-60, -30])
    stream(run_c, [-100, 50])
    # Then A's time-index key (the hour of its last event, then its runId) changed once, when the hour changed:
    # not at every event, which would cost a delete and a put of its index entry each time
    changes = [key for i, key in enumerate(keys_a) if i == 0 or key != keys_a[i - 1]]
    assert changes == [("T#2024-11-22T15", run_a), ("T#2024-11-22T16", run_a)]
    # And an hour's runs are listed newest last event first, sorted from the projected lastEventTime
    catalog = CatalogStore(pipeline.dynamodb, pipeline.lineage_table)
    assert [r["runId"] for r in catalog.runs_of_hour("2024-11-22T15")] == [run_c, run_b]
    assert [(r["runId"], r["lastEventTime"]) for r in catalog.runs_of_hour("2024-11-22T16")] == [(run_a, at(210))]
