"""``lineage-intake logs QUERY_NAME [--since 1h] [--id ID]``: run a saved Logs Insights query of the template.

- against a deployed stack (``--stack``): CloudWatch Logs Insights (StartQuery on the stack's log groups, from
  its outputs, with the query text of ``template.yaml``, which is what the stack saved);
- against the local stack: the same query text over ``.local/logs/`` (``LINEAGE_LOGS_DIR``, written by
  ``make run``) with ``lineage_intake_tools.logs_insights``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from lineage_intake_tools.cli.base import CliError, Context, Result, Subparsers, add_command, table
from lineage_intake_tools.logs_insights import QueryError, SavedQuery, saved_queries, to_record
from lineage_intake_tools.logs_insights import run as run_query

#: Log group logical id -> the stack output that names it.
LOG_GROUP_OUTPUTS = {
    "HttpApiAccessLogGroup": "AccessLogGroupName",
    "IngestLogGroup": "IngestLogGroupName",
    "MergeLogGroup": "MergeLogGroupName",
    "AuthorizerLogGroup": "AuthorizerLogGroupName",
}
QUERY_TIMEOUT_SECONDS = 120.0


@dataclass
class LocalLogs:
    """The local stack's ``.local/logs/<LogGroup>.log`` files."""

    directory: Path

    @property
    def description(self) -> str:
        return f"local logs in {self.directory}"

    def records(self, group: str, since: datetime, until: datetime) -> Iterator[dict[str, Any]]:
        from lineage_intake_tools.local.logfiles import file_name, read_lines

        low, high = _stamp(since), _stamp(until)
        for line in read_lines(self.directory / file_name(group)):
            record = to_record(line, log=group)
            stamp = str(record.get("@timestamp", ""))
            if low <= stamp <= high:
                yield record

    def run(self, query: SavedQuery, since: datetime, until: datetime, **values: str) -> list[dict[str, Any]]:
        records = [r for g in query.log_groups for r in self.records(g, since, until)]
        return run_query(query.render(**values), records)

    def function_lines(self, group: str, since: datetime, until: datetime) -> Iterator[dict[str, Any]]:
        import json

        for record in self.records(group, since, until):
            try:
                parsed = json.loads(record["@message"])
            except ValueError:
                continue
            if isinstance(parsed, dict):
                yield {**parsed, "timestamp": record.get("@timestamp")}


@dataclass
class CloudWatchLogs:
    """A deployed stack's log groups, through Logs Insights."""

    client: Any
    groups: Mapping[str, str]  # logical id -> log group name
    stack: str

    @property
    def description(self) -> str:
        return f"CloudWatch Logs of stack {self.stack!r}"

    def _names(self, logical: tuple[str, ...]) -> list[str]:
        missing = [g for g in logical if g not in self.groups]
        if missing:
            raise CliError(f"stack {self.stack!r} has no output for the log group(s) {missing}", "configuration")
        return [self.groups[g] for g in logical]

    def _insights(self, names: list[str], text: str, since: datetime, until: datetime) -> list[dict[str, Any]]:
        query_id = self.client.start_query(
            logGroupNames=names, startTime=int(since.timestamp()), endTime=int(until.timestamp()), queryString=text
        )["queryId"]
        deadline = time.monotonic() + QUERY_TIMEOUT_SECONDS
        while True:
            answer = self.client.get_query_results(queryId=query_id)
            if answer["status"] in ("Complete", "Failed", "Cancelled", "Timeout"):
                break
            if time.monotonic() > deadline:
                raise CliError(f"Logs Insights query {query_id} still running after {QUERY_TIMEOUT_SECONDS:.0f} s")
            time.sleep(1.0)
        if answer["status"] != "Complete":
            raise CliError(f"Logs Insights query {query_id} ended {answer['status']}")
        return [{f["field"]: f.get("value") for f in row if f["field"] != "@ptr"} for row in answer["results"]]

    def run(self, query: SavedQuery, since: datetime, until: datetime, **values: str) -> list[dict[str, Any]]:
        return self._insights(self._names(query.log_groups), query.render(**values), since, until)

    def function_lines(self, group: str, since: datetime, until: datetime) -> Iterator[dict[str, Any]]:
        import json

        text = "fields @timestamp, @message | sort @timestamp asc | limit 10000"
        for row in self._insights(self._names((group,)), text, since, until):
            try:
                parsed = json.loads(row.get("@message") or "")
            except ValueError:
                continue
            if isinstance(parsed, dict):
                yield {**parsed, "timestamp": row.get("@timestamp")}


def _stamp(moment: datetime) -> str:
    from datetime import UTC

    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def log_source(ctx: Context) -> LocalLogs | CloudWatchLogs:
    stack = getattr(ctx.args, "stack", None)
    if stack:
        outputs = ctx.stack_outputs
        groups = {g: outputs[o] for g, o in LOG_GROUP_OUTPUTS.items() if outputs.get(o)}
        return CloudWatchLogs(ctx.client("logs"), groups, stack)
    directory = getattr(ctx.args, "logs_dir", None) or ctx.env.get("LINEAGE_LOGS_DIR")
    if not directory:
        raise CliError(
            "where are the logs? Pass --stack NAME (a deployed stack), or --logs-dir / LINEAGE_LOGS_DIR "
            "(the local stack: --env-file .local/openlineage.env)",
            "configuration",
        )
    return LocalLogs(Path(directory))


def logs_command(ctx: Context) -> Result:
    from lineage_intake_tools.cli.events import window

    queries = saved_queries()
    query = queries.get(ctx.args.query)
    if query is None:
        raise CliError(f"no saved query {ctx.args.query!r}; the template has {', '.join(sorted(queries))}", "usage")
    values = {}
    if query.parameters:
        if not ctx.args.id:
            raise CliError(f"query {query.name!r} needs --id (an event id, run id or request id)", "usage")
        values = dict.fromkeys(query.parameters, ctx.args.id)
    since, until = window(ctx, default_since="1h")
    source = log_source(ctx)
    try:
        rows = source.run(query, since, until, **values)
    except QueryError as exc:
        raise CliError(str(exc), "usage") from exc
    columns = list(dict.fromkeys(k for row in rows for k in row if k not in ("@message", "@log")))
    lines = table([[_cell(row.get(c)) for c in columns] for row in rows], columns) if rows else []
    lines.append(f"{len(rows)} row(s) from {query.name} ({source.description})")
    return Result(rows, lines)


def _cell(value: Any) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def add_commands(sub: Subparsers) -> None:
    names = ", ".join(sorted(saved_queries()))
    parser = add_command(sub, "logs", logs_command, f"run a saved Logs Insights query ({names})")
    parser.add_argument("query", metavar="QUERY_NAME", help=names)
    parser.add_argument("--id", help="the id for event-fate: an eventId, runId or request id")
    parser.add_argument("--since", metavar="WHEN", help="2h, 30m, 7d or an ISO time (default 1h)")
    parser.add_argument("--until", metavar="WHEN", help="as --since (default now)")
    parser.add_argument("--logs-dir", type=Path, help="the local stack's logs (default: LINEAGE_LOGS_DIR)")
