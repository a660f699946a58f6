"""What every command group shares: where the tables are, the context a command runs in, and its output.

Command groups (``connections``, ``tokens``, ``lineage``) import this module; ``cli/__init__`` imports them, so
there is no cycle.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TextIO

from lineage_intake_tools.envfile import endpoint_url, read_env_file

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
    "start_grace_queue": ("StartGraceQueueUrl", "LINEAGE_START_GRACE_QUEUE_URL"),
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


def env_file_values(path: Path) -> dict[str, str]:
    try:
        return read_env_file(path)
    except OSError as exc:
        raise CliError(f"cannot read --env-file {str(path)!r}: {exc.strerror}", reason="configuration") from exc


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
        """A boto3 client; botocore's ``AWS_ENDPOINT_URL_<SERVICE_ID>`` or ``AWS_ENDPOINT_URL`` points it at a local
        endpoint (``envfile.endpoint_url``: the local stack serves DynamoDB apart from the rest)."""
        from botocore.exceptions import NoRegionError

        endpoint = endpoint_url(self.env, service)
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

    @cached_property
    def stack_outputs(self) -> dict[str, str]:
        """The ``--stack``'s outputs (log groups, the DLQ URL...); empty without ``--stack``."""
        return {o["OutputKey"]: o["OutputValue"] for o in self._stack.get("Outputs", [])}

    @cached_property
    def stack_parameters(self) -> dict[str, str]:
        return {p["ParameterKey"]: p["ParameterValue"] for p in self._stack.get("Parameters", [])}

    @cached_property
    def _stack(self) -> dict[str, Any]:
        stack = getattr(self.args, "stack", None)
        if not stack:
            return {}
        answer: dict[str, Any] = self.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
        return answer


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


# ---------------------------------------------------------------------- the operator service
def admin(ctx: Context) -> Any:
    from lineage_intake.service.admin import Admin
    from lineage_intake.store.auth import ConnectionStore, TokenStore

    connections_table = ctx.resources.require("connections_table")
    tokens_table = ctx.resources.require("tokens_table")
    return Admin(
        connections=ConnectionStore(ctx.dynamodb, connections_table),
        tokens=TokenStore(ctx.dynamodb, tokens_table),
    )
