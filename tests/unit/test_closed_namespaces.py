"""Which namespaces a run's merge may write (docs/auth.md, "Namespaces stay closed"): pure fold rules."""

from __future__ import annotations

import dataclasses
from typing import Any

from lineage_intake.merge import Checkpoint, StoredEvent, merge_run
from lineage_intake.static_lineage import MAX_DEFINED_BY, merge_dataset_events

from tests.helpers.runs import at, stored

PARENT = {"job": {"namespace": "default", "name": "dag"}, "run": {"runId": "0193a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a6b"}}


def event(event_type: str, seconds: float, *, parent: bool = True) -> dict[str, Any]:
    return {
        "eventType": event_type,
        "eventTime": at(seconds),
        "producer": "https://example.com/producer",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "job": {"namespace": "team-x", "name": "load"},
        "run": {"runId": "0193a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a6c", "facets": {"parent": PARENT} if parent else {}},
    }


def sent_by(raw: dict[str, Any], *connections: str, token_id: str | None = None) -> StoredEvent:
    return dataclasses.replace(stored(raw), connections=frozenset(connections), token_id=token_id or "tok_one")


def test_a_parent_in_a_namespace_every_token_could_write_is_open() -> None:
    # Given a START and a COMPLETE both sent by a token of team-x and default
    events = [sent_by(event("START", 0), "team-x", "default"), sent_by(event("COMPLETE", 9), "team-x", "default")]
    # When the run is merged
    run = merge_run(events)
    # Then the parent's namespace may be written
    assert run is not None and run.writable == {"team-x", "default"} and not run.parent_closed


def test_one_event_from_a_narrower_token_closes_the_parents_namespace() -> None:
    # Given a START from a token of both connections and a COMPLETE (without parent facet) from team-x only
    events = [sent_by(event("START", 0), "team-x", "default"), sent_by(event("COMPLETE", 9, parent=False), "team-x")]
    # When the run is merged
    run = merge_run(events)
    # Then default is closed to it
    assert run is not None and run.writable == {"team-x"} and run.parent_closed


def test_events_stored_before_connections_were_recorded_close_every_other_namespace() -> None:
    # Given events without recorded connections (items written before issue 13)
    run = merge_run([stored(event("START", 0)), stored(event("COMPLETE", 9))])
    # Then only the run's own namespace is writable
    assert run is not None and run.writable == frozenset() and run.parent_closed


def test_a_parent_in_the_runs_own_namespace_is_never_closed() -> None:
    # Given a run whose parent is in its own job namespace, sent by a token of that namespace
    own = {**PARENT, "job": {"namespace": "team-x", "name": "dag"}}
    raw = [event("START", 0), event("COMPLETE", 9)]
    for e in raw:
        e["run"]["facets"]["parent"] = own
    # When merged
    run = merge_run([sent_by(e, "team-x") for e in raw])
    # Then the parent is open
    assert run is not None and not run.parent_closed


def test_the_checkpoint_keeps_the_writable_namespaces_and_an_old_checkpoint_fails_closed() -> None:
    # Given a run folded up to a checkpoint by a token of both connections
    first = [sent_by(event("START", 0), "team-x", "default"), sent_by(event("RUNNING", 5), "team-x", "default")]
    partial = merge_run(first)
    assert partial is not None and partial.checkpoint is not None
    complete = sent_by(event("COMPLETE", 9), "team-x", "default")
    # When the next merge resumes from it
    resumed = merge_run(
        [e for e in first if e.event_time >= partial.checkpoint.boundary] + [complete], resume=partial.checkpoint
    )
    # Then the result is that of a full re-read
    assert resumed is not None and resumed.writable == {"team-x", "default"}
    # But a checkpoint written before the field existed closes the other namespaces
    old = Checkpoint(
        partial.checkpoint.boundary, {k: v for k, v in partial.checkpoint.state.items() if k != "writable"}
    )
    from_old = merge_run([e for e in first if e.event_time >= old.boundary] + [complete], resume=old)
    assert from_old is not None and from_old.writable == frozenset() and from_old.parent_closed


def dataset_event(seconds: float) -> dict[str, Any]:
    return {
        "eventTime": at(seconds),
        "producer": "https://example.com/producer",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": {"namespace": "postgres://db:5432", "name": "public.orders", "facets": {}},
    }


def test_a_dataset_definition_names_its_senders_latest_first_and_at_most_five() -> None:
    # Given DatasetEvents from seven tokens, token 0 sending again last
    events = [sent_by(dataset_event(i), f"conn-{i}", token_id=f"tok{i}") for i in range(7)]
    events.append(sent_by(dataset_event(10), "conn-0", token_id="tok0"))
    # When the definition is folded
    definition = merge_dataset_events(events)
    # Then it names the five latest distinct senders, latest first, with their connections
    assert definition is not None
    assert [s["tokenId"] for s in definition.defined_by] == ["tok0", "tok6", "tok5", "tok4", "tok3"]
    assert len(definition.defined_by) == MAX_DEFINED_BY
    assert definition.content()["definedBy"][0] == {"tokenId": "tok0", "connections": ["conn-0"]}
