"""``lineage-intake jobs delete``, ``datasets delete``, ``namespaces delete``: remove lineage and raw events.

Each asks for confirmation unless given ``--yes`` (and refuses without a terminal), then reports what it removed.
What goes, and what stays: ``lineage_intake.service.retention`` and docs/operations.md#retention-and-deletion.
"""

from __future__ import annotations

import sys
from typing import Any

from lineage_intake_tools.cli.base import CliError, Context, Result, Subparsers, add_command, add_group


def retention(ctx: Context) -> Any:
    from lineage_intake.service.retention import Retention
    from lineage_intake.store.retention import RetentionStore

    return Retention(
        RetentionStore(ctx.dynamodb, lambda: ctx.client("s3")),
        events_table=ctx.resources.require("events_table"),
        lineage_table=ctx.resources.require("lineage_table"),
    )


def confirm(ctx: Context, question: str) -> None:
    """Ask on the terminal; ``--yes`` answers for scripts. Without a terminal and without ``--yes``: refuse."""
    if getattr(ctx.args, "yes", False):
        return
    if ctx.json or not sys.stdin.isatty():
        raise CliError(f"{question} Refused: pass --yes to confirm without a terminal", "confirmation_required")
    ctx.stderr.write(f"{question} [y/N] ")
    ctx.stderr.flush()
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise CliError("nothing deleted", "cancelled")


def _report(data: dict[str, Any]) -> list[str]:
    return [
        f"Removed {data['removed']}: {data['lineageRecords']} lineage record(s), {data['runs']} run(s), "
        f"{data['events']} raw event(s), {data['s3Bodies']} S3 body(ies), {data['quarantinedEvents']} quarantined "
        "event(s)."
    ]


def jobs_delete(ctx: Context) -> Result:
    service = retention(ctx)
    args = ctx.args
    runs = service.job_runs(args.namespace, args.job)
    confirm(ctx, f"Delete job {args.namespace}/{args.job}, its {len(runs)} run(s), their lineage and raw events?")
    data = service.delete_job(args.namespace, args.job).as_dict()
    return Result(data, _report(data))


def datasets_delete(ctx: Context) -> Result:
    args = ctx.args
    confirm(ctx, f"Delete dataset {args.namespace}/{args.name}, its lineage edges and its DatasetEvents?")
    data = retention(ctx).delete_dataset(args.namespace, args.name).as_dict()
    return Result(data, _report(data))


def namespaces_delete(ctx: Context) -> Result:
    service = retention(ctx)
    jobs, datasets = service.namespace_members(ctx.args.namespace)
    if not jobs and not datasets:
        raise CliError(f"namespace {ctx.args.namespace!r} holds no job and no dataset", "not_found")
    confirm(ctx, f"Delete namespace {ctx.args.namespace}: {len(jobs)} job(s) and {len(datasets)} dataset(s)?")
    data = service.delete_namespace(ctx.args.namespace).as_dict()
    return Result(data, _report(data))


def add_dataset_delete(commands: Subparsers) -> None:
    """``datasets delete``, added to the ``datasets`` group of ``cli.lineage``."""
    delete = add_command(commands, "delete", datasets_delete, "delete a dataset's lineage and raw events")
    delete.add_argument("namespace", metavar="NAMESPACE")
    delete.add_argument("name", metavar="NAME")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def add_commands(sub: Subparsers) -> None:
    jobs = add_group(sub, "jobs", "jobs: delete (lineage records and raw events)")
    delete = add_command(jobs, "delete", jobs_delete, "delete a job, its runs, edges and raw events")
    delete.add_argument("namespace", metavar="NAMESPACE")
    delete.add_argument("job", metavar="JOB")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    namespaces = add_group(sub, "namespaces", "namespaces: delete every job and dataset of one")
    delete = add_command(namespaces, "delete", namespaces_delete, "delete every job and dataset of a namespace")
    delete.add_argument("namespace", metavar="NAMESPACE")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
