"""Load: 8 producer threads send 2,000 events to the local stack; nothing is lost or counted twice, and every run
merges. The merge lag under load is measured by ``make bench`` (bench/load_bench.py), not asserted here: the
only time bound below is a generous one, so that a busy machine cannot make the test flaky. It runs on a stack
of its own: its 1,800 events would otherwise crowd the session stack's listings for the tests after it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lineage_intake import keys
from lineage_intake_tools.local.demo import with_namespace
from lineage_intake_tools.local.loadgen import MergeWatcher, Producers, make_runs

from tests.helpers.corpus import corpus_json
from tests.helpers.local_stack import RunningStack, start_stack, stop_stack
from tests.helpers.stack_client import COMPLETE, START

THREADS = 8
RUNS = 900  # 1,800 events, and every 9th event of a thread sent twice: 2,000 requests
DUPLICATES = 1 / 9
#: Generous: about 4 minutes on the shared 2-core development machine (merges take ~0.45 s each there).
MERGE_BOUND = 300.0


@pytest.fixture(scope="module")
def load_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    stack = start_stack(tmp_path_factory.mktemp("load-stack"))
    try:
        yield stack
    finally:
        stop_stack(stack)


def test_two_thousand_events_from_eight_threads_are_stored_once_and_every_run_merges(
    load_stack: RunningStack,
) -> None:
    local_stack = load_stack
    # Given 900 START+COMPLETE runs over 30 jobs, and 8 producers that resend every 9th event (a client retry)
    pair = [with_namespace(corpus_json(path), local_stack.namespace) for path in (START, COMPLETE)]
    runs = make_runs(pair, local_stack.namespace, RUNS, jobs=30, prefix="e2e-load")
    producers = Producers(local_stack.url, local_stack.api_key, threads=THREADS, rate=1_000.0, duplicates=DUPLICATES)
    dynamodb = local_stack.client("dynamodb")
    # When they send everything as fast as the stack takes it
    with MergeWatcher(dynamodb, local_stack.env["LINEAGE_LINEAGE_TABLE"]) as watcher:
        producers.run(runs, watcher.expect)
        unmerged = watcher.wait(MERGE_BOUND)
    stats = producers.stats
    # Then every request succeeded: each event accepted once, each resend answered as a duplicate (a send whose
    # first attempt timed out on the busy machine but was stored is accepted by its retry: stats.retried)
    assert stats.errors == []
    assert stats.sent == 2 * RUNS + stats.resent and stats.sent >= 1_990
    assert stats.accepted == 2 * RUNS
    assert stats.duplicate == stats.resent > 0
    # And every run merged within the bound, from exactly its two events (none lost, none counted twice)
    assert unmerged == 0
    assert len(watcher.merged) == RUNS
    assert {run_id: m["eventCount"] for run_id, m in watcher.merged.items() if m["eventCount"] != 2} == {}
    # And the Events table holds exactly two items per run
    table = local_stack.env["LINEAGE_EVENTS_TABLE"]
    counts = {}
    for run in runs:
        answer = dynamodb.query(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": keys.run_pk(run.namespace, run.job, run.run_id)}},
            Select="COUNT",
            ConsistentRead=True,
        )
        counts[run.run_id] = answer["Count"]
    assert {run_id: n for run_id, n in counts.items() if n != 2} == {}
