"""Property: the incremental merge (resuming from a checkpoint, docs/merge.md) gives the full merge's result.

Real runs from the corpus arrive in any order, with duplicates, cut into stream batches anywhere; each batch is
merged the way ``MergeService`` merges it (its first record resumes from the stored checkpoint when the record
sorts at or after it, a later record that sorts before where that merge started reading re-merges in full), and
the checkpoint goes through the Lineage table's item codec. The last merge must equal a full re-read.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lineage_intake.merge import Checkpoint, MergedRun, StoredEvent, merge_run, ordered
from lineage_intake.store.lineage_items import CHECKPOINT_EVERY, checkpoint_item, read_checkpoint

from tests.helpers.runs import at, dbt_family, flink_streaming_run, listener_run, seed_run, stored


def _seed_with_running_events() -> list[dict[str, Any]]:
    start, complete = seed_run("etl_orders_7_days")
    events = [start, complete]
    for i, fields in enumerate((("menu_id",), ("menu_id", "order_id"), ("order_id",))):
        running = copy.deepcopy(start) | {"eventType": "RUNNING", "eventTime": f"2020-02-22T22:43:0{i}.000Z"}
        facet = running["outputs"][0]["facets"]["columnLineage"]
        facet["fields"] = {k: v for k, v in facet["fields"].items() if k in fields}
        events.append(running)
    return events


def _same_instant_run() -> list[dict[str, Any]]:
    """Several events of one instant (folded in lifecycle order), so a checkpoint boundary falls inside it."""
    start, *running, _ = flink_streaming_run("6b1f4c7e-8d02-4a55-9f0e-3c2d1b0a9e03", checkpoints=5)
    for i, event in enumerate(running[2:]):
        event["eventTime"] = running[1]["eventTime"]
        event["run"]["facets"]["checkpoints"]["completed"] = 100 + i
    return [start, *running]


def _dbt_child_run() -> list[dict[str, Any]]:
    family = dbt_family()
    counts: dict[str, int] = {}
    for event in family:
        counts[event["run"]["runId"]] = counts.get(event["run"]["runId"], 0) + 1
    busiest = max(counts, key=lambda r: counts[r])
    return [e for e in family if e["run"]["runId"] == busiest]


RUNS: dict[str, list[StoredEvent]] = {
    name: [stored(e) for e in events]
    for name, events in {
        "seed with running events": _seed_with_running_events(),
        "listener": listener_run(),
        "flink": flink_streaming_run("6b1f4c7e-8d02-4a55-9f0e-3c2d1b0a9e02", checkpoints=6),
        "same instant": _same_instant_run(),
        "dbt": _dbt_child_run(),
    }.items()
}


class Run:
    """One run's Events partition and its stored checkpoint, merged the way the merge service merges."""

    def __init__(self) -> None:
        self.events: dict[tuple[str, str], StoredEvent] = {}
        self.checkpoint: Checkpoint | None = None
        self.checkpoint_version = ""
        self.result: MergedRun | None = None

    def merge(self, trigger: str) -> str:
        resume = self.checkpoint if self.checkpoint and trigger >= self.checkpoint.boundary else None
        events = ordered(e for e in self.events.values() if resume is None or e.event_time >= resume.boundary)
        run = merge_run(events, resume=resume)
        assert run is not None
        item = checkpoint_item(run)
        if item is not None and run.merge_version > self.checkpoint_version:
            self.checkpoint, self.checkpoint_version = read_checkpoint(item), run.merge_version
        elif item is None and run.status in ("merged", "awaiting_start"):
            self.checkpoint, self.checkpoint_version = None, ""
        if self.result is None or run.merge_version >= self.result.merge_version:
            self.result = run
        return resume.boundary if resume else ""


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[str, list[StoredEvent], list[bool]]:
    name = draw(st.sampled_from(sorted(RUNS)))
    events = RUNS[name]
    copies = [draw(st.integers(min_value=1, max_value=3)) for _ in events]
    sent = draw(st.permutations([e for e, n in zip(events, copies, strict=True) for _ in range(n)]))
    cuts = draw(st.lists(st.booleans(), min_size=len(sent), max_size=len(sent)))
    return name, sent, cuts


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=arrivals())
def test_incremental_merges_give_the_full_merge_whatever_the_order_duplicates_and_batches(
    case: tuple[str, list[StoredEvent], list[bool]],
) -> None:
    name, sent, cuts = case
    run = Run()
    batch: list[StoredEvent] = []
    # When the events are stored as they arrive, and each stream batch is merged at its end
    for i, (event, cut) in enumerate(zip(sent, cuts, strict=True)):
        run.events[(event.event_time, event.event_id)] = event
        batch.append(event)
        if cut or i == len(sent) - 1:
            read_from: str | None = None
            for record in batch:
                if read_from is not None and record.event_time >= read_from:
                    continue  # coalesced: that merge read it
                read_from = run.merge(record.event_time)
            batch = []
    # Then the last result is the full merge of every stored event
    full = merge_run(ordered({(e.event_time, e.event_id): e for e in RUNS[name]}.values()))
    assert run.result == full and run.result is not None and run.result.merge_version == full.merge_version


def test_a_streaming_run_of_5000_events_merged_one_by_one_reads_a_bounded_number_of_events_per_merge() -> None:
    # Given a Flink run whose 5,000 events each arrive in a stream batch of their own
    start, running, _ = flink_streaming_run("6b1f4c7e-8d02-4a55-9f0e-3c2d1b0a9e04", checkpoints=2)
    run = Run()
    read: list[int] = []
    sizes: list[int] = []
    for i in range(5_000):
        event = copy.deepcopy(running) if i else start
        if i:
            event["eventTime"] = at(10 * i)
            event["run"]["facets"]["checkpoints"]["completed"] = i
        record = stored(event)
        run.events[(record.event_time, record.event_id)] = record
        boundary = run.checkpoint.boundary if run.checkpoint else ""
        read.append(sum(1 for e in run.events.values() if e.event_time >= boundary))
        run.merge(record.event_time)
        sizes.append(len(json.dumps(run.checkpoint.state)) if run.checkpoint else 0)
    # Then no merge read more than the events since the last checkpoint (at most CHECKPOINT_EVERY + the
    # checkpoint's own instant), and the checkpoint does not grow with the run
    assert max(read) <= CHECKPOINT_EVERY + 1
    assert max(sizes[100:]) <= sizes[100] + 16
    # And the last merge is the full merge of the 5,000 events
    full = merge_run(ordered(run.events.values()))
    assert run.result == full and full is not None and full.event_count == 5_000
