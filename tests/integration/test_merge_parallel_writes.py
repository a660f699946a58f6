"""A merge's dataset and schema-version writes side by side (issue 13, docs/merge.md "Parallel dataset writes"):
the same items and counts as one after the other, a refused condition counted as before, a failing write fails
the merge once the writes in flight are done, and its retry completes it (docs/merge.md "Concurrency"). Every
pipeline has tables of its own in one moto account."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from lineage_intake import keys
from lineage_intake.errors import StorageUnavailable
from lineage_intake.service.merge import MergeOutcome
from lineage_intake.store.dynamo import to_item
from lineage_intake.store.lineage import DATASET_WRITE_THREADS, PARALLEL_DATASET_WRITES
from lineage_intake.store.lineage_items import DATASET_SK

from tests.helpers.dynamo_faults import CallThreads, before_first_update, throttle_updates
from tests.helpers.pipeline import Pipeline, fresh_pipeline
from tests.helpers.runs import spread_run, wide_run

NS, OTHER, JOB = "team-x", "team-y", "load_orders"
OLDER, NEWER, NEWEST = (f"0193a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a0{i}" for i in (1, 2, 3))
#: Outputs per run; with the inputs their column lineage names, twice as many datasets: over the threshold.
OUTPUTS = PARALLEL_DATASET_WRITES + 4
_prefixes = itertools.count()


def pipeline_of(session: boto3.Session, write_threads: int) -> Pipeline:
    pipeline = fresh_pipeline(session, f"par{next(_prefixes)}")
    pipeline.lineage.write_threads = write_threads
    return pipeline


def counts(outcomes: list[MergeOutcome]) -> list[tuple[Any, ...]]:
    """What the merge log lines count, per merge."""
    return [(o.status, o.written, o.unchanged, o.deleted, o.skipped_newer, o.latest_run) for o in outcomes]


def history() -> list[list[dict[str, Any]]]:
    """Three runs of one job, merged newer first: new datasets in two namespaces with shared tag names; an older
    run with another schema and other tags (history, versions and createdAt moved back); the newest run with the
    newer run's schema and other tags again (tag-only updates)."""
    return [
        spread_run(wide_run(NS, JOB, NEWER, outputs=OUTPUTS, fields=3, start=100), OTHER, ["pii", "sales"]),
        spread_run(wide_run(NS, JOB, OLDER, outputs=OUTPUTS, fields=4, start=0), OTHER, ["pii", "finance"]),
        spread_run(wide_run(NS, JOB, NEWEST, outputs=OUTPUTS, fields=3, start=200), OTHER, ["gold"]),
    ]


def test_a_run_of_more_datasets_than_the_threshold_merges_side_by_side_exactly_as_one_after_the_other(
    aws: boto3.Session,
) -> None:
    # Given two pipelines, one writing a merge's datasets one after the other, one on the pool
    sequential, parallel = pipeline_of(aws, 1), pipeline_of(aws, DATASET_WRITE_THREADS)
    threads = CallThreads(parallel.dynamodb)
    sequential_threads = CallThreads(sequential.dynamodb)
    for run in history():
        # When each run of the history is merged by both
        one_by_one, side_by_side = sequential.send(*run), parallel.send(*run)
        # Then each merge counts the same records written, unchanged, deleted and skipped
        assert counts(side_by_side) == counts(one_by_one)
        assert [o.status for o in side_by_side] == ["merged"]
        # And the Lineage tables hold the same items, version markers included
        assert parallel.snapshot() == sequential.snapshot()
    # And the parallel pipeline's dataset writes were made on several pool threads, the other's on the caller's
    assert len(threads.of("UpdateItem") - {"MainThread"}) > 1
    assert all(name.startswith("lineage-write") for name in threads.of("UpdateItem") - {"MainThread"})
    assert sequential_threads.of("UpdateItem") == {"MainThread"}
    # And the history wrote what it was built to: datasets, versions of both schemas, one listing per tag name
    assert counts(side_by_side) == [("merged", 15, 72, 0, 0, True)]  # the newest run: its tags only
    assert len(parallel.lineage.dataset_versions(NS, "out0")) == 2
    tags = {sk for pk, sk in parallel.snapshot() if pk == "TAGS"}
    assert tags == {"TAG#pii", "TAG#sales", "TAG#finance", "TAG#gold"}


@pytest.mark.parametrize("write_threads", [1, DATASET_WRITE_THREADS])
def test_a_dataset_a_newer_run_wrote_between_the_read_and_the_write_keeps_the_newer_schema_and_is_not_counted(
    aws: boto3.Session, write_threads: int
) -> None:
    # Given a clean pipeline merging a run, as the reference count
    clean = pipeline_of(aws, write_threads)
    expected = clean.send(*wide_run(NS, JOB, NEWER, outputs=OUTPUTS, fields=3, start=100))[-1]
    # And a pipeline where a newer run writes out5's schema after the merge read it and before it writes it
    raced = pipeline_of(aws, write_threads)
    pk = keys.dataset_key(NS, "out5")
    newer = {"pk": pk, "sk": DATASET_SK, "type": "dataset", "schemaVersion": "9999", "schemaDigest": "newer"}
    put = lambda: raced.dynamodb.put_item(TableName=raced.lineage_table, Item=to_item(newer))  # noqa: E731
    before_first_update(raced.dynamodb, pk, DATASET_SK, put)
    # When the same run is merged there
    outcome = raced.send(*wide_run(NS, JOB, NEWER, outputs=OUTPUTS, fields=3, start=100))[-1]
    # Then the refused write is left out of the records written, and nothing else changes in the counts
    assert outcome.status == "merged"
    assert (outcome.written, outcome.unchanged, outcome.skipped_newer) == (
        expected.written - 1,
        expected.unchanged,
        expected.skipped_newer,
    )
    # And the newer run's schema stays on top
    dataset = raced.lineage.get_dataset(NS, "out5")
    assert dataset is not None and dataset.get("fields") is None
    stored = raced.snapshot()[(pk, DATASET_SK)]
    assert (stored["schemaVersion"], stored["schemaDigest"]) == ("9999", "newer")


def throttled_merge(
    aws: boto3.Session, write_threads: int
) -> tuple[Pipeline, list[dict[str, Any]], Callable[[], None]]:
    """A run whose COMPLETE's merge fails: storage throttles every write of one of its datasets. The pipeline,
    the run's stream records, and the function that ends the throttling."""
    run = spread_run(wide_run(NS, JOB, NEWER, outputs=OUTPUTS, fields=3, start=100), OTHER, ["pii"])
    throttled = pipeline_of(aws, write_threads)
    stop = throttle_updates(throttled.dynamodb, keys.dataset_key(OTHER, "out7"), DATASET_SK)
    for event in run:
        throttled.store(event)
    return throttled, throttled.filtered(throttled.new_records()), stop


@pytest.mark.parametrize("write_threads", [1, DATASET_WRITE_THREADS])
def test_a_throttled_dataset_write_fails_the_merge_as_retriable_once_the_other_writes_are_done(
    aws: boto3.Session, write_threads: int
) -> None:
    # Given a run whose merge storage throttles on one dataset, and the calls the client makes
    throttled, records, _ = throttled_merge(aws, write_threads)
    threads = CallThreads(throttled.dynamodb)
    # When the run's records are delivered
    with pytest.raises(StorageUnavailable):
        throttled.deliver(records)
    # Then the merge failed as retriable, and the throttled dataset was not written
    assert throttled.outcomes[-1].status == "failed" and throttled.outcomes[-1].retriable
    assert throttled.lineage.get_dataset(OTHER, "out7") is None
    # And no write of the merge was still being made when it failed: nothing changes afterwards
    after_failure = throttled.snapshot()
    made = len(threads.calls)
    time.sleep(0.2)
    assert len(threads.calls) == made and throttled.snapshot() == after_failure


@pytest.mark.parametrize("write_threads", [1, DATASET_WRITE_THREADS])
def test_the_retry_of_a_merge_that_failed_on_a_dataset_write_leaves_the_tables_of_a_clean_merge(
    aws: boto3.Session, write_threads: int
) -> None:
    # Given a run merged on a clean pipeline, as the reference
    clean = pipeline_of(aws, write_threads)
    clean.send(*spread_run(wide_run(NS, JOB, NEWER, outputs=OUTPUTS, fields=3, start=100), OTHER, ["pii"]))
    # And the same run, whose merge failed on a throttled dataset write
    throttled, records, stop = throttled_merge(aws, write_threads)
    with pytest.raises(StorageUnavailable):
        throttled.deliver(records)
    # When storage recovers and the stream delivers the records again
    stop()
    (retried,) = throttled.deliver(records)[-1:]
    # Then the retry merges the run, and the Lineage table is the clean merge's
    assert retried.status == "merged"
    assert throttled.snapshot() == clean.snapshot()
