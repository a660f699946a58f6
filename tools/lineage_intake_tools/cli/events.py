"""``lineage-intake events ...``: the event log (what happened to the events producers sent) and replay.

- ``events list [--namespace N] [--job J] [--run R] [--since 2h] [--until T] [--status accepted|duplicate|rejected]``;
- ``events show EVENT_ID``: the body and its fate (for a run event, the merge that used it);
- ``events replay [filters] [--as-namespace N]``: re-ingest quarantined events through ingest's own code.

Where each status comes from, and what replay checks: docs/operations.md#the-event-log.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from lineage_intake.lineage import normalize_run_id

from lineage_intake_tools.cli.base import CliError, Context, Result, Subparsers, add_command, add_group, table

_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_moment(text: str, now: datetime | None = None) -> datetime:
    """``2h``, ``30m``, ``7d`` (ago) or an ISO 8601 time (UTC when it has no offset)."""
    now = now or datetime.now(UTC)
    match = _RELATIVE.match(text.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"cannot read the time {text!r}: give 2h, 30m, 7d or an ISO time", "usage") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def window(ctx: Context, default_since: str = "24h") -> tuple[datetime, datetime]:
    since = parse_moment(getattr(ctx.args, "since", None) or default_since)
    until = parse_moment(ctx.args.until) if getattr(ctx.args, "until", None) else datetime.now(UTC)
    if since > until:
        raise CliError("--since is after --until", "usage")
    return since, until


# ---------------------------------------------------------------------------------------------- wiring
def events_store(ctx: Context) -> Any:
    from lineage_intake.store.events import EventsStore

    return EventsStore(
        ctx.dynamodb,
        ctx.resources.require("events_table"),
        ctx.resources.require("body_bucket"),
        lambda: ctx.client("s3"),
    )


def event_log(ctx: Context) -> Any:
    from lineage_intake.service.eventlog import EventLog
    from lineage_intake.store.eventlog import EventLogReader
    from lineage_intake.store.lineage import LineageStore
    from lineage_intake.store.quarantine import QuarantineStore

    events = events_store(ctx)
    lineage = LineageStore(ctx.dynamodb, ctx.resources.require("lineage_table"))
    return EventLog(EventLogReader(events), QuarantineStore(events), lineage)


def filters(ctx: Context) -> Any:
    from lineage_intake.service.eventlog import Filters

    args = ctx.args
    since, until = window(ctx)
    run_id = normalize_run_id(args.run) if args.run else None
    return Filters(namespace=args.namespace, job=args.job, run_id=run_id, since=since, until=until)


def event_retention_days(ctx: Context) -> int:
    """The deployed stack's EventRetentionDays (replayed events expire as ingested ones do); the template's
    default for the local stack, unless LINEAGE_EVENT_RETENTION_DAYS says otherwise."""
    if ctx.stack_parameters.get("EventRetentionDays"):
        return int(ctx.stack_parameters["EventRetentionDays"])
    if ctx.env.get("LINEAGE_EVENT_RETENTION_DAYS"):
        return int(ctx.env["LINEAGE_EVENT_RETENTION_DAYS"])
    from lineage_intake_tools.local.template import load_template

    return int(load_template()["Parameters"]["EventRetentionDays"]["Default"])


# ---------------------------------------------------------------------------------------------- commands
def events_list(ctx: Context) -> Result:
    status = ctx.args.status
    if status == "duplicate":
        return _duplicates(ctx)
    log = event_log(ctx)
    chosen = filters(ctx)
    views: list[dict[str, Any]] = []
    if status in (None, "rejected"):
        views += log.rejected(chosen, chosen.since, chosen.until)
    if status in (None, "accepted"):
        views += log.accepted(chosen)
    views.sort(key=lambda v: str(v.get("receivedAt")))
    rows = [
        [
            str(v.get("receivedAt", "-")),
            v["status"],
            str(v.get("reason") or "-"),
            str(v.get("namespace") or "-"),
            str(v.get("job") or v.get("dataset") or "-"),
            str(v.get("eventType") or "-"),
            str(v.get("eventId") or v.get("id")),
            _replay(v),
        ]
        for v in views
    ]
    lines = table(rows, ["RECEIVED", "STATUS", "REASON", "NAMESPACE", "JOB", "TYPE", "ID", "REPLAY"])
    lines.append(f"{len(views)} event(s) from {chosen.since:%Y-%m-%d %H:%M} to {chosen.until:%Y-%m-%d %H:%M} UTC")
    return Result(views, lines)


def _replay(view: dict[str, Any]) -> str:
    replay = view.get("replay")
    return f"{replay['status']} {replay.get('at') or ''}".strip() if replay else "-"


def _duplicates(ctx: Context) -> Result:
    """A duplicate writes nothing: its only trace is ingest's log line, read through the logs."""
    from lineage_intake_tools.cli.logs import log_source

    since, until = window(ctx)
    source = log_source(ctx)
    args = ctx.args
    views = []
    for line in source.function_lines("IngestLogGroup", since, until):
        if line.get("outcome") != "duplicate":
            continue
        if args.namespace and line.get("namespace") != args.namespace:
            continue
        if args.job and line.get("job") != args.job:
            continue
        if args.run and line.get("runId") != normalize_run_id(args.run):
            continue
        keys = ("timestamp", "namespace", "job", "runId", "eventType", "eventId", "tokenId", "correlation_id")
        views.append({"status": "duplicate", **{k: line.get(k) for k in keys}})
    rows = [[str(v["timestamp"]), str(v["namespace"]), str(v["job"]), str(v["eventId"])] for v in views]
    lines = table(rows, ["LOGGED", "NAMESPACE", "JOB", "EVENT ID"])
    lines.append(f"{len(views)} duplicate delivery(ies) in the ingest log ({source.description})")
    return Result(views, lines)


def events_show(ctx: Context) -> Result:
    import json

    view = event_log(ctx).show(ctx.args.event_id)
    lines = [f"Event {ctx.args.event_id}: {view['status']}" + (f" ({view['reason']})" if view.get("reason") else "")]
    for key in ("namespace", "job", "dataset", "runId", "eventType", "eventTime", "producer", "tokenId", "receivedAt"):
        if view.get(key):
            lines.append(f"  {key}: {view[key]}")
    if view.get("detail"):
        lines.append(f"  detail: {view['detail']}")
    for error in view.get("errors") or []:
        lines.append(f"  error: {error.get('path')}: {error.get('message')}")
    if view.get("replay"):
        lines.append(f"  replay: {_replay(view)} -> {view['replay'].get('eventId') or '-'}")
    merge = view.get("merge")
    if merge:
        lines.append(
            f"  merge: {merge['status']}"
            + (f", state {merge.get('state')}, at {merge.get('mergedAt')}" if merge["status"] == "merged" else "")
        )
    lines.append("  body:")
    lines += ["    " + line for line in json.dumps(view["body"], indent=2, sort_keys=True).splitlines()]
    return Result(view, lines)


def events_replay(ctx: Context) -> Result:
    from lineage_intake.config import IngestSettings
    from lineage_intake.service.ingest import IngestService
    from lineage_intake.service.replay import Replayer
    from lineage_intake.store.auth import TokenStore

    log = event_log(ctx)
    chosen = filters(ctx)
    items = list(log.rejected_items(chosen, chosen.since, chosen.until))
    if ctx.args.reason:
        items = [i for i in items if i.get("reason") == ctx.args.reason]
    settings = IngestSettings(
        events_table=ctx.resources.require("events_table"),
        body_bucket=ctx.resources.require("body_bucket"),
        event_retention_days=event_retention_days(ctx),
    )
    ingest = IngestService(log.reader.events, settings, report=lambda outcome: None)
    replayer = Replayer(ingest, log.quarantine, TokenStore(ctx.dynamodb, ctx.resources.require("tokens_table")))
    results = [r.as_dict() for r in replayer.replay(items, as_namespace=ctx.args.as_namespace)]
    counts = {s: sum(1 for r in results if r["status"] == s) for s in ("accepted", "duplicate", "rejected")}
    rows = [
        [r["receivedAt"], r["status"], str(r["namespace"] or "-"), str(r["job"] or "-"), str(r["message"] or "-")]
        for r in results
    ]
    lines = table(rows, ["RECEIVED", "STATUS", "NAMESPACE", "JOB", "DETAIL"])
    lines.append(
        f"Replayed {len(results)} event(s): {counts['accepted']} accepted, {counts['duplicate']} duplicate "
        f"(stored before), {counts['rejected']} still refused."
    )
    return Result({"summary": {"replayed": len(results), **counts}, "events": results}, lines)


# ---------------------------------------------------------------------------------------------- parsers
def _filters(parser: Any, default_since: str = "24h") -> None:
    parser.add_argument("--namespace", metavar="N", help="job (or dataset) namespace")
    parser.add_argument("--job", metavar="J", help="job name")
    parser.add_argument("--run", metavar="RUN_ID", help="run id (with --namespace and --job)")
    parser.add_argument("--since", metavar="WHEN", help=f"2h, 30m, 7d or an ISO time (default {default_since})")
    parser.add_argument("--until", metavar="WHEN", help="as --since (default now)")


def add_commands(sub: Subparsers) -> None:
    commands = add_group(sub, "events", "the event log: what happened to each event, and replay of rejected ones")
    listing = add_command(commands, "list", events_list, "events received, with their fate")
    _filters(listing)
    listing.add_argument("--status", choices=["accepted", "duplicate", "rejected"], help="only this fate")
    show = add_command(commands, "show", events_show, "one event: its body and its fate")
    show.add_argument("event_id", metavar="EVENT_ID", help="an eventId, or a rejected event's id (RECEIVED#DIGEST)")
    replay = add_command(commands, "replay", events_replay, "re-ingest quarantined events (idempotent)")
    _filters(replay)
    replay.add_argument("--reason", choices=["forbidden", "invalid_event"], help="only events refused for this")
    replay.add_argument("--as-namespace", metavar="N", help="rewrite job.namespace first (you vouch for it)")
