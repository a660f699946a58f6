"""``lineage-intake runs ...`` and ``lineage-intake datasets ...``: read (and re-merge) the merged lineage.

- ``runs show NAMESPACE JOB RUN_ID``: the merged run (state, inputs, outputs, integration, parent, column lineage);
- ``runs list NAMESPACE JOB``: a job's runs, newest first;
- ``runs awaiting``: runs with a terminal event but no START yet;
- ``runs merge NAMESPACE JOB RUN_ID``: merge a run again from its stored events (after a DLQ alarm, for example);
- ``datasets show NAMESPACE NAME``: the dataset, whether it is partial, its upstream and downstream jobs;
- ``datasets columns NAMESPACE NAME FIELD``: the input fields that a field is computed from, and its consumers;
- ``datasets register NAMESPACE NAME``: register a dataset, which makes a partial dataset a full asset.

The groups plug into ``lineage_intake_tools.cli`` through ``add_commands`` (listed in ``COMMAND_GROUPS``). An unknown
run or dataset raises ``NotFound``, a domain error: the CLI prints its message and exits 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lineage_intake.errors import DomainError
from lineage_intake.lineage import normalize_run_id
from lineage_intake.merge import MergedRun
from lineage_intake.store.lineage import LineageStore

if TYPE_CHECKING:
    from lineage_intake.service.merge import MergeService

from lineage_intake_tools.cli.base import Context, Result, Subparsers, add_command, add_group, table
from lineage_intake_tools.cli.retention import add_dataset_delete

#: Attributes that are storage details, not lineage: left out of what the commands print.
_INTERNAL = frozenset(
    {
        "pk",
        "sk",
        "gsi1pk",
        "gsi1sk",
        "gsi2pk",
        "gsi2sk",
        "gsi3pk",
        "gsi3sk",
        "eventsPk",
        "type",
        "contentHash",
        "mergeVersion",
        "runVersion",
        "runHash",
        "staticVersion",
        "staticHash",
        "lineageVersion",
        "lineageDigest",
        "schemaVersion",
        "schemaDigest",
        "lineageHash",
        "fieldsVersion",
        "fieldsHash",
        "symlinksVersion",
        "symlinksHash",
        "definedVersion",
        "definedHash",
        "childVersion",
    }
)


class NotFound(DomainError):
    """The run or dataset is not in the Lineage table."""

    reason = "not_found"


def lineage_store(ctx: Context) -> LineageStore:
    return LineageStore(ctx.dynamodb, ctx.resources.require("lineage_table"))


def public(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in _INTERNAL}


# ---------------------------------------------------------------------------------------------- views
def refs(value: Any) -> list[dict[str, Any]]:
    """A run item's datasets (``[namespace, name]`` pairs, docs/merge.md) as ``{namespace, name}`` maps."""
    return [{"namespace": r[0], "name": r[1]} if isinstance(r, list) else dict(r) for r in value or []]


def run_view(
    item: Mapping[str, Any],
    children: Sequence[Mapping[str, Any]] | None = None,
    folded: MergedRun | None = None,
) -> dict[str, Any]:
    """A merged run for people and scripts: every documented key is present (null or empty when unknown).

    ``folded``: the run folded from its events, for what the run item leaves in the Events table (facets,
    column and dataset-level lineage, the full error message)."""
    details: dict[str, Any] = {}
    if folded is not None:
        details = {
            "producer": folded.producer,
            "columnLineage": [dict(c) for c in folded.column_lineage],
            "datasetLineage": [dict(d) for d in folded.dataset_lineage],
            "facets": list(folded.run_facet_names),
            "errorMessage": dict(folded.error_message) if folded.error_message else None,
        }
    item = {**item, **{k: v for k, v in details.items() if v is not None}}
    view: dict[str, Any] = {
        "namespace": item.get("namespace"),
        "job": item.get("job"),
        "runId": item.get("runId"),
        "state": item.get("state"),
        "startTime": item.get("startTime"),
        "endTime": item.get("endTime"),
        "integration": item.get("integration"),
        "processingType": item.get("processingType"),
        "jobType": item.get("jobType"),
        "producer": item.get("producer"),
        "parent": item.get("parent"),
        "root": item.get("root"),
        "inputs": refs(item.get("inputs")),
        "outputs": refs(item.get("outputs")),
        "columnLineage": list(item.get("columnLineage") or []),
        "datasetLineage": list(item.get("datasetLineage") or []),
        "errorMessage": item.get("errorMessage"),
        "nominalTime": item.get("nominalTime"),
        "facets": list(item.get("facets") or []),
        "eventCount": item.get("eventCount"),
        "startMissing": bool(item.get("startMissing", False)),
        "mergedAt": item.get("mergedAt"),
        "placeholder": bool(item.get("placeholder", False)),
    }
    for name in ("columnLineageTruncated", "datasetLineageTruncated", "inputsTruncated", "outputsTruncated"):
        if item.get(name):
            view[name] = True
    if children is not None:
        view["children"] = [
            {k: c.get(k) for k in ("namespace", "job", "runId", "state", "startTime", "endTime")} for c in children
        ]
    return view


def dataset_view(lineage: Mapping[str, Any]) -> dict[str, Any]:
    """A dataset with its upstream (writing) and downstream (reading) jobs, from one index query."""
    item = lineage["dataset"] or {}

    def jobs(edges: list[Mapping[str, Any]], current: bool = True) -> list[dict[str, Any]]:
        """Jobs by name; ``current``: the edges of their latest runs with datasets (and static edges), else the
        history edges (reported by an earlier run only)."""
        by_job: dict[tuple[str, str], dict[str, Any]] = {}
        for edge in edges:
            if bool(edge.get("current", True)) != current:
                continue
            job = edge.get("job") or {}
            key = (str(job.get("namespace")), str(job.get("name")))
            entry = by_job.setdefault(key, {"namespace": key[0], "name": key[1], "sources": []})
            if edge.get("source") not in entry["sources"]:
                entry["sources"].append(edge.get("source"))
        return [by_job[k] | {"sources": sorted(by_job[k]["sources"])} for k in sorted(by_job)]

    defined = item.get("definedFields")
    return {
        "namespace": item.get("namespace"),
        "name": item.get("name"),
        "partial": bool(item.get("partial", True)),
        "registered": bool(item.get("registered", False)),
        "defined": item.get("definedAt") is not None,
        "fields": list(defined if defined is not None else item.get("fields") or []),
        "symlinks": list(item.get("definedSymlinks") or item.get("symlinks") or []),
        "description": item.get("definedDescription"),
        "definedBy": list(item.get("definedBy") or []),
        "upstream": jobs(lineage["upstream"]),
        "downstream": jobs(lineage["downstream"]),
        "formerUpstream": jobs(lineage["upstream"], current=False),
        "formerDownstream": jobs(lineage["downstream"], current=False),
    }


def _names(refs: list[Mapping[str, Any]]) -> str:
    return ", ".join(f"{r.get('namespace')}/{r.get('name')}" for r in refs) or "-"


# ---------------------------------------------------------------------------------------------- runs
def runs_show(ctx: Context) -> Result:
    args = ctx.args
    run_id = normalize_run_id(args.run_id)
    store = lineage_store(ctx)
    item = store.get_run(args.namespace, args.job, run_id)
    if item is None:
        raise NotFound(
            f"no merged run {run_id} of job {args.job!r} in namespace {args.namespace!r}: a run is merged once its "
            "terminal event is stored (or, for a streaming job, its START); check the names, or "
            "`lineage-intake runs list` for the job's runs"
        )
    view = run_view(
        item,
        store.run_children(args.namespace, args.job, run_id),
        merge_service(ctx).fold_run(args.namespace, args.job, run_id),
    )
    lines = [
        f"Run {view['runId']} of {view['namespace']}/{view['job']}: {view['state']}",
        f"  started {view['startTime'] or '-'}, ended {view['endTime'] or '-'}, {view['eventCount'] or 0} event(s)",
        f"  integration {view['integration'] or '-'}, processing {view['processingType'] or '-'}",
        f"  inputs: {_names(view['inputs'])}",
        f"  outputs: {_names(view['outputs'])}",
    ]
    if view["parent"]:
        parent = view["parent"]
        lines.append(f"  parent: {parent.get('namespace')}/{parent.get('job')} run {parent.get('runId') or '-'}")
    for entry in view["columnLineage"]:
        out = entry["output"]
        sources = ", ".join(f"{i['namespace']}/{i['name']}.{i['field']}" for i in entry["inputs"]) or "-"
        lines.append(f"  column {out['namespace']}/{out['name']}.{out['field']} <- {sources}")
    if view["errorMessage"]:
        lines.append(f"  error: {view['errorMessage'].get('message')}")
    for child in view.get("children", []):
        lines.append(f"  child: {child['namespace']}/{child['job']} run {child['runId']} {child['state']}")
    return Result(view, lines)


def runs_list(ctx: Context) -> Result:
    args = ctx.args
    items = lineage_store(ctx).list_runs(args.namespace, args.job, limit=args.limit)
    views = [run_view(i) for i in items]
    rows = [(str(v["runId"]), str(v["state"]), str(v["startTime"] or "-"), str(v["endTime"] or "-")) for v in views]
    lines = table(rows, ("RUN ID", "STATE", "STARTED", "ENDED")) if rows else ["No merged runs."]
    return Result(views, lines)


def runs_awaiting(ctx: Context) -> Result:
    items = lineage_store(ctx).list_awaiting_start(limit=ctx.args.limit)
    views = [run_view(i) for i in items]
    rows = [(str(v["namespace"]), str(v["job"]), str(v["runId"]), str(v["endTime"])) for v in views]
    header = ("NAMESPACE", "JOB", "RUN ID", "TERMINAL EVENT AT")
    lines = table(rows, header) if rows else ["No run awaits START."]
    return Result(views, lines)


def merge_service(ctx: Context, outcomes: list[Any] | None = None) -> MergeService:
    """The merge use case on the stack's tables (``runs merge``; ``runs show`` folds a run's events with it)."""
    from lineage_intake.service.merge import MergeService, SqsGraceQueue
    from lineage_intake.store.events import EventsStore

    events = EventsStore(
        ctx.dynamodb,
        ctx.resources.require("events_table"),
        ctx.resources.require("body_bucket"),
        lambda: ctx.client("s3"),
    )

    class Grace:
        """The stack's StartGraceQueue, looked up only if the merge finds a run newly waiting for its START."""

        def send(self, namespace: str, job: str, run_id: str, /) -> None:
            queue = SqsGraceQueue(ctx.client("sqs"), ctx.resources.require("start_grace_queue"))
            queue.send(namespace, job, run_id)

    report = outcomes.append if outcomes is not None else (lambda _outcome: None)
    return MergeService(events, lineage_store(ctx), report, Grace())


def runs_merge(ctx: Context) -> Result:
    """Merge one run again from its stored events, as the stream consumer would."""
    from lineage_intake.service.merge import MergeOutcome

    outcomes: list[MergeOutcome] = []
    service = merge_service(ctx, outcomes)
    args = ctx.args
    outcome = service.merge_run(args.namespace, args.job, normalize_run_id(args.run_id))
    fields = outcome.log_fields()
    line = (
        f"Run {outcome.run_id} of {outcome.namespace}/{outcome.job}: {outcome.status} ({outcome.state or '-'}), "
        f"{outcome.events} event(s), {outcome.written} record(s) written, {outcome.unchanged} unchanged."
    )
    return Result(fields, [line])


# ---------------------------------------------------------------------------------------------- datasets
def datasets_show(ctx: Context) -> Result:
    args = ctx.args
    lineage = lineage_store(ctx).dataset_lineage(args.namespace, args.name)
    if lineage["dataset"] is None:
        raise NotFound(
            f"no dataset {args.name!r} in namespace {args.namespace!r}: a dataset appears once a merged run reads or "
            "writes it, or a DatasetEvent or JobEvent names it"
        )
    view = dataset_view(lineage)
    kind = "partial (seen in lineage only)" if view["partial"] else "full"
    lines = [
        f"Dataset {view['namespace']}/{view['name']}: {kind}",
        f"  fields: {', '.join(str(f.get('name')) for f in view['fields']) or '-'}",
        *(
            f"  defined by token {s.get('tokenId')} (connections: {', '.join(s.get('connections') or []) or '-'})"
            for s in view["definedBy"]
        ),
        f"  upstream jobs (write it): {_names(view['upstream'])}",
        f"  downstream jobs (read it): {_names(view['downstream'])}",
    ]
    return Result(view, lines)


def datasets_columns(ctx: Context) -> Result:
    args = ctx.args
    store = lineage_store(ctx)
    upstream = [public(i) for i in store.column_lineage(args.namespace, args.name, args.field)]
    downstream = [public(i) for i in store.column_downstream(args.namespace, args.name, args.field)]
    data = {
        "namespace": args.namespace,
        "name": args.name,
        "field": args.field,
        "inputs": [
            {**e["input"], "transformations": e.get("transformations", []), "job": e.get("job")} for e in upstream
        ],
        "consumers": [{**e["output"], "job": e.get("job")} for e in downstream],
    }
    lines = [f"Column {args.namespace}/{args.name}.{args.field}"]
    lines += [f"  <- {i['namespace']}/{i['name']}.{i['field']} (job {i['job']['name']})" for i in data["inputs"]]
    lines += [f"  -> {o['namespace']}/{o['name']}.{o['field']} (job {o['job']['name']})" for o in data["consumers"]]
    if len(lines) == 1:
        lines.append("  no column lineage recorded")
    return Result(data, lines)


def datasets_register(ctx: Context) -> Result:
    args = ctx.args
    store = lineage_store(ctx)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    store.register_dataset(args.namespace, args.name, now, by=args.by)
    view = dataset_view(store.dataset_lineage(args.namespace, args.name))
    return Result(view, [f"Registered dataset {args.namespace}/{args.name}: it is a full asset."])


# ---------------------------------------------------------------------------------------------- parsers
def add_runs_parser(sub: Subparsers) -> None:
    commands = add_group(sub, "runs", "merged runs: show, list, awaiting START, merge again")
    show = add_command(commands, "show", runs_show, "show a merged run")
    show.add_argument("namespace", metavar="NAMESPACE", help="the job namespace")
    show.add_argument("job", metavar="JOB", help="the job name")
    show.add_argument("run_id", metavar="RUN_ID", help="the runId as the producer sent it")
    listing = add_command(commands, "list", runs_list, "a job's merged runs, newest first")
    listing.add_argument("namespace", metavar="NAMESPACE")
    listing.add_argument("job", metavar="JOB")
    listing.add_argument("--limit", type=int, default=20, metavar="N", help="at most N runs (default 20)")
    awaiting = add_command(commands, "awaiting", runs_awaiting, "runs with a terminal event but no START yet")
    awaiting.add_argument("--limit", type=int, default=100, metavar="N", help="at most N runs (default 100)")
    merge = add_command(commands, "merge", runs_merge, "merge a run again from its stored events")
    merge.add_argument("namespace", metavar="NAMESPACE")
    merge.add_argument("job", metavar="JOB")
    merge.add_argument("run_id", metavar="RUN_ID")


def add_datasets_parser(sub: Subparsers) -> None:
    commands = add_group(sub, "datasets", "datasets: show, column lineage, register, delete")
    show = add_command(commands, "show", datasets_show, "show a dataset with its upstream and downstream jobs")
    show.add_argument("namespace", metavar="NAMESPACE", help="the dataset namespace, e.g. postgres://host:5432")
    show.add_argument("name", metavar="NAME", help="the dataset name, e.g. db.schema.table")
    columns = add_command(commands, "columns", datasets_columns, "the column lineage of a dataset field")
    columns.add_argument("namespace", metavar="NAMESPACE")
    columns.add_argument("name", metavar="NAME")
    columns.add_argument("field", metavar="FIELD")
    register = add_command(commands, "register", datasets_register, "register a dataset (no longer partial)")
    register.add_argument("namespace", metavar="NAMESPACE")
    register.add_argument("name", metavar="NAME")
    register.add_argument("--by", metavar="WHO", help="who registers it (kept on the record)")
    add_dataset_delete(commands)


def add_commands(sub: Subparsers) -> None:
    """The ``runs`` and ``datasets`` groups (one entry of ``cli.COMMAND_GROUPS``)."""
    add_runs_parser(sub)
    add_datasets_parser(sub)
