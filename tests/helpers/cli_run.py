"""The ``lineage-intake`` CLI run in-process on moto, through its own entry point (integration tests)."""

from __future__ import annotations

from collections.abc import Callable

import lineage_intake_tools.cli as cli
import pytest
from lineage_intake_tools.cli import lineage as cli_lineage
from lineage_intake_tools.local.template import Stack

CliRun = Callable[..., tuple[int, str, str]]


def cli_runner(stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> CliRun:
    """A callable ``(*argv) -> (exit code, stdout, stderr)`` over the test stack's tables."""
    try:
        cli.build_parser().parse_args(["runs", "awaiting"])
    except SystemExit:  # cli.py does not list the runs and datasets groups: plug them in as it would
        monkeypatch.setattr(cli, "COMMAND_GROUPS", [*cli.COMMAND_GROUPS, cli_lineage.add_commands])
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "LINEAGE_EVENTS_TABLE": stack.physical_name("EventsTable"),
        "LINEAGE_LINEAGE_TABLE": stack.physical_name("LineageTable"),
        "LINEAGE_BODY_BUCKET": stack.physical_name("BodyBucket"),
    }

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli.main(list(argv), env=env)
        out, err = capsys.readouterr()
        return code, out, err

    return run
