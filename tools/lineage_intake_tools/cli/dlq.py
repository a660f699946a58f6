"""``lineage-intake dlq list|redrive``: the merge's dead-letter queue, by run.

The queue is the stack's ``MergeDeadLetterQueueUrl`` output (``--stack``) or ``LINEAGE_MERGE_DLQ_URL`` (the local
stack's env file). ``list`` leaves the messages in the queue; ``redrive`` re-merges their runs and deletes the
messages whose runs all merged. docs/operations.md#the-dead-letter-queue.
"""

from __future__ import annotations

from typing import Any

from lineage_intake_tools.cli.base import CliError, Context, Result, Subparsers, add_command, add_group, table


def queue_url(ctx: Context) -> str:
    stack = getattr(ctx.args, "stack", None)
    if stack:
        if ctx.stack_outputs.get("MergeDeadLetterQueueUrl"):
            return str(ctx.stack_outputs["MergeDeadLetterQueueUrl"])
        raise CliError(f"stack {stack!r} has no output MergeDeadLetterQueueUrl", "configuration")
    if ctx.env.get("LINEAGE_MERGE_DLQ_URL"):
        return str(ctx.env["LINEAGE_MERGE_DLQ_URL"])
    raise CliError(
        "where is the dead-letter queue? Pass --stack NAME or set LINEAGE_MERGE_DLQ_URL "
        "(for the local stack: --env-file .local/openlineage.env)",
        "configuration",
    )


def dead_letters(ctx: Context, with_merge: bool) -> Any:
    from botocore.config import Config
    from lineage_intake.service.redrive import DeadLetters
    from lineage_intake.store.deadletter import DeadLetterStore

    from lineage_intake_tools.envfile import endpoint_url

    # Stream calls go to the regional endpoint (boto3's account-based endpoints are not served by every stand-in).
    streams = ctx.session.client(
        "dynamodbstreams",
        endpoint_url=endpoint_url(ctx.env, "dynamodbstreams"),
        config=Config(account_id_endpoint_mode="disabled"),
    )
    store = DeadLetterStore(ctx.client("sqs"), streams, queue_url(ctx))
    merge = None
    if with_merge:
        from lineage_intake_tools.cli.lineage import merge_service

        merge = merge_service(ctx)
    return DeadLetters(store, merge)


def _lines(letters: list[dict[str, Any]], redrive: bool) -> list[str]:
    rows = []
    for letter in letters:
        what = ", ".join(letter["targets"]) if letter["targets"] else (letter["unreadable"] or "no event records")
        row = [letter["messageId"], str(letter["condition"] or "-"), str(letter["batchSize"] or "-"), what]
        if redrive:
            failed = [r for r in letter["results"] if str(r["status"]).startswith("failed")]
            row.append("deleted" if letter["deleted"] else f"kept ({len(failed)} failed)" if failed else "kept")
        rows.append(row)
    header = ["MESSAGE", "CONDITION", "RECORDS", "RUNS"] + (["MESSAGE STATE"] if redrive else [])
    return table(rows, header) if rows else ["The dead-letter queue is empty."]


def dlq_list(ctx: Context) -> Result:
    letters = [letter.as_dict() for letter in dead_letters(ctx, with_merge=False).inspect(ctx.args.limit)]
    return Result(letters, _lines(letters, redrive=False))


def dlq_redrive(ctx: Context) -> Result:
    letters = [letter.as_dict() for letter in dead_letters(ctx, with_merge=True).redrive(ctx.args.limit)]
    deleted = sum(1 for d in letters if d["deleted"])
    lines = _lines(letters, redrive=True)
    lines.append(f"Redrove {len(letters)} message(s): {deleted} deleted, {len(letters) - deleted} kept.")
    return Result({"messages": letters, "deleted": deleted, "kept": len(letters) - deleted}, lines)


def add_commands(sub: Subparsers) -> None:
    commands = add_group(sub, "dlq", "the merge's dead-letter queue: what failed, by run, and re-merge")
    listing = add_command(commands, "list", dlq_list, "the failed stream batches and the runs they name")
    listing.add_argument("--limit", type=int, default=100, metavar="N", help="at most N messages (default 100)")
    redrive = add_command(commands, "redrive", dlq_redrive, "re-merge those runs; delete the messages that succeeded")
    redrive.add_argument("--limit", type=int, default=100, metavar="N", help="at most N messages (default 100)")
