"""``lineage-intake``: the operator CLI (connections and API tokens; more groups plug in the same way).

Where the tables are:

- ``--stack NAME``: the CloudFormation outputs of a deployed stack (``TokensTableName``, ...);
- otherwise the environment: ``LINEAGE_TOKENS_TABLE``, ``LINEAGE_CONNECTIONS_TABLE``, ``LINEAGE_EVENTS_TABLE``,
  ``LINEAGE_LINEAGE_TABLE``, ``LINEAGE_BODY_BUCKET`` (the local stack writes them to ``.local/openlineage.env``;
  ``--env-file`` reads such a file).

boto3 clients honour ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_<SERVICE>``), ``AWS_REGION``/``--region`` and
the usual credential variables, so the same commands work against the local stack.

Adding a command group: write a module with ``def add_commands(sub: Subparsers) -> None`` that adds a group
parser and its commands with ``add_command(group_sub, "show", handler, help=...)`` (from ``cli.base``), then
list it in ``COMMAND_GROUPS``.
A handler takes a ``Context`` and returns a ``Result``: JSON-able ``data`` for ``--json`` and text ``lines``.
Raise ``CliError`` (or a ``DomainError``) to fail with a message and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping

from lineage_intake.errors import DomainError, StorageUnavailable

from lineage_intake_tools.cli import connections, dlq, events, lineage, logs, retention, tokens, ui_proxy
from lineage_intake_tools.cli.base import (
    COMMON,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    PROG,
    RESOURCES,
    CliError,
    Context,
    Result,
    Subparsers,
    add_command,
    add_group,
    emit,
    env_file_values,
    fail,
    table,
)

#: Every command group. Add yours here.
COMMAND_GROUPS: list[Callable[[Subparsers], None]] = [
    connections.add_commands,
    tokens.add_commands,
    lineage.add_commands,
    events.add_commands,
    logs.add_commands,
    dlq.add_commands,
    retention.add_commands,
    ui_proxy.add_commands,
]

__all__ = [
    "COMMAND_GROUPS",
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "RESOURCES",
    "CliError",
    "Context",
    "Result",
    "Subparsers",
    "add_command",
    "add_group",
    "build_parser",
    "main",
    "table",
]


# ---------------------------------------------------------------------- entry point
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Operate a lineage-intake stack: connections, API tokens, runs and datasets, the event log.",
        parents=[COMMON],
    )
    sub = parser.add_subparsers(title="command groups", metavar="GROUP", required=True)
    for add_parser in COMMAND_GROUPS:
        add_parser(sub)
    return parser


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run one command. Returns the exit code: 0 ok, 1 error, 2 usage, 3 storage unavailable (retry)."""
    from botocore.exceptions import BotoCoreError, ClientError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed usage or help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    environment = dict(os.environ if env is None else env)
    json_mode = bool(getattr(args, "json", False))
    ctx: Context | None = None
    try:
        env_file = getattr(args, "env_file", None)
        if env_file is not None:
            environment = {**environment, **env_file_values(env_file)}
        ctx = Context(args=args, env=environment)
        emit(ctx, args.handler(ctx))
        return EXIT_OK
    except CliError as exc:
        return fail(json_mode, exc.message, exc.reason, exc.exit_code, sys.stderr)
    except StorageUnavailable as exc:
        return fail(json_mode, exc.message, exc.reason, EXIT_UNAVAILABLE, sys.stderr)
    except DomainError as exc:
        return fail(json_mode, exc.message, exc.reason, EXIT_ERROR, sys.stderr)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        message = f"AWS answered {error.get('Code', '?')}: {error.get('Message', '')}"
        if error.get("Code") == "ResourceNotFoundException" and ctx is not None and "resources" in vars(ctx):
            message += f" (table names came from the {ctx.resources.source}; is it the right stack?)"
        return fail(json_mode, message, "aws_error", EXIT_ERROR, sys.stderr)
    except BotoCoreError as exc:
        return fail(json_mode, f"AWS call failed: {exc}", "aws_error", EXIT_ERROR, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
