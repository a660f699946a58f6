"""``lineage-intake``: the operator CLI (connections and API tokens; more groups plug in the same way).

Where the tables are:

- ``--stack NAME``: the CloudFormation outputs of a deployed stack (``TokensTableName``, ...);
- otherwise the environment: ``LINEAGE_TOKENS_TABLE``, ``LINEAGE_CONNECTIONS_TABLE``, ``LINEAGE_EVENTS_TABLE``,
  ``LINEAGE_LINEAGE_TABLE``, ``LINEAGE_BODY_BUCKET`` (the local stack writes them to ``.local/openlineage.env``;
  ``--env-file`` reads such a file).

boto3 clients honour ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_<SERVICE>``), ``AWS_REGION``/``--region`` and
the usual credential variables, so the same commands work against the local stack.

Adding a command group: write ``def add_things_parser(sub: Subparsers) -> None`` that adds a group parser and
its commands with ``add_command(group_sub, "show", handler, help=...)``, then list it in ``COMMAND_GROUPS``.
A handler takes a ``Context`` and returns a ``Result``: JSON-able ``data`` for ``--json`` and text ``lines``.
Raise ``CliError`` (or a ``DomainError``) to fail with a message and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TextIO

from lineage_intake.errors import DomainError, StorageUnavailable

PROG = "lineage-intake"
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3

Subparsers = Any  # argparse's _SubParsersAction is private


class CliError(Exception):
    """A user-facing failure: printed as ``lineage-intake: error: <message>``; exits with ``exit_code``."""

    def __init__(self, message: str, reason: str = "error", exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.exit_code = exit_code


# ---------------------------------------------------------------------- stack resources
#: Resource -> (CloudFormation output key, environment variable).
RESOURCES: dict[str, tuple[str, str]] = {
    "tokens_table": ("TokensTableName", "LINEAGE_TOKENS_TABLE"),
    "connections_table": ("ConnectionsTableName", "LINEAGE_CONNECTIONS_TABLE"),
    "events_table": ("EventsTableName", "LINEAGE_EVENTS_TABLE"),
    "lineage_table": ("LineageTableName", "LINEAGE_LINEAGE_TABLE"),
    "body_bucket": ("BodyBucketName", "LINEAGE_BODY_BUCKET"),
}


@dataclass(frozen=True)
class StackResources:
    """The physical names of the stack's tables and bucket, and where they were found (for error messages)."""

    names: Mapping[str, str]
    source: str

    def require(self, resource: str) -> str:
        value = self.names.get(resource)
        if value:
            return value
        output, variable = RESOURCES[resource]
        if self.source.startswith("stack"):
            raise CliError(f"{self.source} has no output {output}", reason="configuration")
        raise CliError(
            f"where is the {resource.replace('_', ' ')}? Pass --stack NAME (a deployed stack) or set {variable} "
            "(for the local stack: --env-file .local/openlineage.env)",
            reason="configuration",
        )


def resources_from_env(env: Mapping[str, str]) -> StackResources:
    names = {resource: env[variable] for resource, (_, variable) in RESOURCES.items() if env.get(variable)}
    return StackResources(names=names, source="environment")


def resources_from_stack(cloudformation: Any, stack: str) -> StackResources:
    from botocore.exceptions import ClientError

    try:
        answer = cloudformation.describe_stacks(StackName=stack)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ValidationError":
            raise CliError(f"stack {stack!r} not found: {error.get('Message', '')}", reason="not_found") from exc
        raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in answer["Stacks"][0].get("Outputs", [])}
    names = {resource: outputs[key] for resource, (key, _) in RESOURCES.items() if outputs.get(key)}
    return StackResources(names=names, source=f"stack {stack!r}")


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (``export`` prefix, quotes and ``#`` comments allowed), as shells source them."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read --env-file {str(path)!r}: {exc.strerror}", reason="configuration") from exc
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


# ---------------------------------------------------------------------- context and output
@dataclass(frozen=True)
class Result:
    """What a command answers: ``data`` is printed as JSON with ``--json``, ``lines`` otherwise."""

    data: Any
    lines: Sequence[str] = ()


@dataclass
class Context:
    """Shared by every command: arguments, environment, AWS clients and the stack's resources."""

    args: argparse.Namespace
    env: Mapping[str, str]
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    @property
    def region(self) -> str | None:
        return getattr(self.args, "region", None) or self.env.get("AWS_REGION") or self.env.get("AWS_DEFAULT_REGION")

    @cached_property
    def session(self) -> Any:
        import boto3

        profile = getattr(self.args, "profile", None)
        if profile:
            return boto3.session.Session(region_name=self.region, profile_name=profile)
        # Keys given in the environment (or in --env-file) win, as they do for boto3 itself.
        credentials = {
            "aws_access_key_id": self.env.get("AWS_ACCESS_KEY_ID"),
            "aws_secret_access_key": self.env.get("AWS_SECRET_ACCESS_KEY"),
            "aws_session_token": self.env.get("AWS_SESSION_TOKEN"),
        }
        kwargs = {k: v for k, v in credentials.items() if v} if credentials["aws_access_key_id"] else {}
        return boto3.session.Session(region_name=self.region, **kwargs)

    def client(self, service: str) -> Any:
        """A boto3 client; ``AWS_ENDPOINT_URL_<SERVICE>`` or ``AWS_ENDPOINT_URL`` points it at a local endpoint."""
        from botocore.exceptions import NoRegionError

        specific = f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}"
        endpoint = self.env.get(specific) or self.env.get("AWS_ENDPOINT_URL") or None
        try:
            return self.session.client(service, endpoint_url=endpoint)
        except NoRegionError as exc:
            raise CliError("no AWS region: pass --region or set AWS_REGION", reason="configuration") from exc

    @cached_property
    def resources(self) -> StackResources:
        stack = getattr(self.args, "stack", None)
        if stack:
            return resources_from_stack(self.client("cloudformation"), stack)
        return resources_from_env(self.env)

    @cached_property
    def dynamodb(self) -> Any:
        return self.client("dynamodb")


def _common_options() -> argparse.ArgumentParser:
    """Options accepted before the group and after any command. SUPPRESS keeps a later default from
    overwriting an earlier value (``lineage-intake --json tokens list`` and ``... tokens list --json``)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    common.add_argument("--stack", metavar="NAME", default=argparse.SUPPRESS, help="read table names from a stack")
    common.add_argument("--region", default=argparse.SUPPRESS, help="AWS region (default: AWS_REGION)")
    common.add_argument("--profile", default=argparse.SUPPRESS, help="AWS named profile")
    common.add_argument(
        "--env-file", metavar="PATH", type=Path, default=argparse.SUPPRESS, help="read variables from a file first"
    )
    return common


COMMON = _common_options()

Handler = Callable[[Context], Result]


def add_command(sub: Subparsers, name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
    """Add one command to a group: it gets the common options and calls ``handler``."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help, parents=[COMMON])
    parser.set_defaults(handler=handler)
    return parser


def add_group(sub: Subparsers, name: str, help: str) -> Subparsers:
    group: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help, parents=[COMMON])
    commands = group.add_subparsers(title="commands", metavar="COMMAND", required=True)
    return commands


def emit(ctx: Context, result: Result) -> None:
    if ctx.json:
        json.dump(result.data, ctx.stdout, indent=2, sort_keys=False)
        ctx.stdout.write("\n")
    else:
        for line in result.lines:
            ctx.stdout.write(f"{line}\n")


def fail(json_mode: bool, message: str, reason: str, code: int, stderr: TextIO) -> int:
    if json_mode:
        json.dump({"error": reason, "message": message}, stderr)
        stderr.write("\n")
    else:
        stderr.write(f"{PROG}: error: {message}\n")
    return code


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> list[str]:
    """Left-aligned columns, for humans."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(str(cell).ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]


# ---------------------------------------------------------------------- connections and tokens
def admin(ctx: Context) -> Any:
    from lineage_intake.store.auth import Admin, ConnectionStore, TokenStore

    connections_table = ctx.resources.require("connections_table")
    tokens_table = ctx.resources.require("tokens_table")
    return Admin(
        connections=ConnectionStore(ctx.dynamodb, connections_table),
        tokens=TokenStore(ctx.dynamodb, tokens_table),
    )


def connections_create(ctx: Context) -> Result:
    conn = admin(ctx).create_connection(ctx.args.name, ctx.args.description, ctx.args.admin or [])
    return Result(conn.public_dict(), [f"Created connection {conn.name!r}."])


def connections_list(ctx: Context) -> Result:
    conns = admin(ctx).list_connections()
    rows = [(c.name, c.public_dict()["createdAt"], ", ".join(c.admins), c.description or "") for c in conns]
    lines = table(rows, ("NAME", "CREATED", "ADMINS", "DESCRIPTION")) if conns else ["No connections."]
    return Result([c.public_dict() for c in conns], lines)


def connections_delete(ctx: Context) -> Result:
    deleted = admin(ctx).delete_connection(ctx.args.name, detach_tokens=ctx.args.detach_tokens)
    lines = [f"Deleted connection {deleted.connection.name!r}."]
    if deleted.detached_tokens:
        lines.append(f"Removed it from the scope of token(s): {', '.join(deleted.detached_tokens)}.")
    data = {**deleted.connection.public_dict(), "detachedTokens": list(deleted.detached_tokens)}
    return Result(data, lines)


def add_connections_parser(sub: Subparsers) -> None:
    commands = add_group(sub, "connections", "manage connections (the job namespaces that tokens may write)")
    create = add_command(commands, "create", connections_create, "create a connection")
    create.add_argument("name", metavar="NAME", help="the job.namespace that events must carry, e.g. production")
    create.add_argument("--description", help="free text")
    create.add_argument("--admin", action="append", metavar="NAME", help="a user or group (repeatable)")
    add_command(commands, "list", connections_list, "list connections")
    delete = add_command(commands, "delete", connections_delete, "delete a connection")
    delete.add_argument("name", metavar="NAME")
    delete.add_argument(
        "--detach-tokens",
        action="store_true",
        help="remove the connection from the scope of the tokens that list it (else: refused while they are active)",
    )


def tokens_create(ctx: Context) -> Result:
    issued = admin(ctx).create_token(ctx.args.connection, ctx.args.name, ctx.args.expires_in_days)
    record = issued.record
    expiry = f"expires {record.public_dict(record.created_at)['expiresAt']}" if record.expires_at else "never expires"
    lines = [
        f"Created token {record.token_id} ({record.name!r}) for connection(s) {', '.join(sorted(record.connections))};"
        f" it {expiry}.",
        "Store the token now: it is shown once and cannot be recovered. It is the last line below.",
        issued.token,
    ]
    return Result({**record.public_dict(record.created_at), "token": issued.token}, lines)


def tokens_list(ctx: Context) -> Result:
    from lineage_intake.tokens import utc_now

    now = utc_now()
    records = admin(ctx).list_tokens(ctx.args.connection)
    shown = [r.public_dict(now) for r in records]
    rows = [
        (
            str(d["tokenId"]),
            str(d["name"]),
            ", ".join(sorted(r.connections)) or "-",
            str(d["status"]),
            str(d["createdAt"]),
            str(d["expiresAt"] or "-"),
            str(d["lastUsedAt"] or "-"),
        )
        for r, d in zip(records, shown, strict=True)
    ]
    header = ("TOKEN ID", "NAME", "CONNECTIONS", "STATUS", "CREATED", "EXPIRES", "LAST USED")
    return Result(shown, table(rows, header) if rows else ["No tokens."])


def tokens_revoke(ctx: Context) -> Result:
    from lineage_intake.tokens import looks_like_token, utc_now

    if looks_like_token(ctx.args.token_id):
        # Never echo it back: it is a secret that should not be on a command line in the first place.
        raise CliError("pass the token id (the 16 hex characters after 'li_'), not the whole token", "invalid_argument")
    record = admin(ctx).revoke_token(ctx.args.token_id)
    data = record.public_dict(utc_now())
    return Result(data, [f"Revoked token {record.token_id} ({record.name!r}) at {data['revokedAt']}."])


def add_tokens_parser(sub: Subparsers) -> None:
    commands = add_group(sub, "tokens", "manage API tokens")
    create = add_command(commands, "create", tokens_create, "create a token; it is printed once, on the last line")
    create.add_argument(
        "--connection", action="append", required=True, metavar="NAME", help="a connection it may write (repeatable)"
    )
    create.add_argument("--name", help="a human name (default: the connection names)")
    create.add_argument("--expires-in-days", type=int, metavar="N", help="expiry in days (default: never)")
    listing = add_command(commands, "list", tokens_list, "list tokens (never secrets)")
    listing.add_argument("--connection", metavar="NAME", help="only tokens scoped to this connection")
    revoke = add_command(commands, "revoke", tokens_revoke, "revoke a token")
    revoke.add_argument("token_id", metavar="TOKEN_ID")


def add_lineage_parsers(sub: Subparsers) -> None:
    """``runs`` and ``datasets`` (``lineage_intake_tools.cli.lineage``), imported here: that module imports this one."""
    from lineage_intake_tools.cli import lineage as cli_lineage

    cli_lineage.add_commands(sub)


#: Every command group. Add yours here.
COMMAND_GROUPS: list[Callable[[Subparsers], None]] = [add_connections_parser, add_tokens_parser, add_lineage_parsers]


# ---------------------------------------------------------------------- entry point
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Operate a lineage-intake stack: connections, API tokens, runs and datasets.",
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
            environment = {**environment, **read_env_file(env_file)}
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
