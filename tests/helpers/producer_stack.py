"""The local stack as producers see it: what it logged per request and per event, and the merged lineage read
with the ``lineage-intake`` CLI (``--json --env-file``). Built on ``local_stack`` (which starts and stops it)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

from tests.helpers.local_stack import START_GRACE, RunningStack, start_stack, stop_stack
from tests.helpers.stack_client import cli as stack_cli

#: The operator CLI, installed next to the interpreter by ``make install``.
CLI = "lineage-intake"
#: Variables of the caller's shell that would point a producer or the CLI somewhere else.
_FOREIGN = ("AWS_", "LINEAGE_", "OPENLINEAGE_", "AIRFLOW__", "DBT_")
_LINEAGE_PATHS = ("/api/v1/lineage", "/api/v1/lineage/batch")
TERMINAL = frozenset({"COMPLETE", "FAIL", "ABORT"})


class CliError(AssertionError):
    """``lineage-intake`` exited non-zero; the message has its output."""


class StackProcess(RunningStack):
    # ------------------------------------------------------------------ what the stack logged
    def log_mark(self) -> int:
        """A position in the log; ``log_records(since=mark)`` gives what was logged after it."""
        return self.log_file.stat().st_size

    def log_records(self, since: int = 0) -> list[dict[str, Any]]:
        with self.log_file.open("rb") as log:
            log.seek(since)
            text = log.read().decode("utf-8", errors="replace")
        records = []
        for line in text.splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
        return records

    def lineage_requests(self, since: int = 0) -> list[dict[str, Any]]:
        """One record per HTTP request to the lineage routes (the front logs them at DEBUG): method and status."""
        return [r for r in self.log_records(since) if r.get("message") == "request" and r.get("path") in _LINEAGE_PATHS]

    def ingest_outcomes(self, since: int = 0) -> list[dict[str, Any]]:
        """Ingest's line per event: outcome (accepted, duplicate, rejected), kind, job, runId, eventType ..."""
        return [r for r in self.log_records(since) if "outcome" in r and str(r.get("message", "")).startswith("event ")]

    def stored_events(self, since: int, expected: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Ingest's outcomes of the events accepted since ``since``, once ``expected`` of them are; asserts that
        every lineage request got a 2xx, that no event was rejected and that none was accepted twice (a retry
        of a stored event is a ``duplicate``)."""
        deadline = time.monotonic() + timeout
        while True:
            outcomes = self.ingest_outcomes(since)
            requests = self.lineage_requests(since)
            accepted = [o for o in outcomes if o["outcome"] == "accepted"]
            settled = len(requests) >= len(outcomes)  # the front logs a request after its answer
            if (len(accepted) >= expected and settled) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        refused = [r for r in requests if not 200 <= int(r["status"]) < 300]
        assert not refused, f"requests answered with a non-2xx status: {refused}"
        rejected = [o for o in outcomes if o["outcome"] not in ("accepted", "duplicate")]
        assert not rejected, f"events rejected by ingest: {rejected}"
        ids = [o["eventId"] for o in accepted]
        assert len(ids) == len(set(ids)), "an event was accepted twice"
        assert len(accepted) == expected, f"{len(accepted)} events accepted, {expected} sent: {outcomes}"
        return accepted

    def tail(self, lines: int = 60) -> str:
        text = self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        errors = self.err_file.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        return "\n".join([*text, "--- stderr ---", *errors])

    # ------------------------------------------------------------------ what a producer and the CLI see
    def producer_env(self, **extra: str) -> dict[str, str]:
        """The caller's environment without its AWS/OpenLineage/Airflow/dbt settings, plus the stack's
        ``OPENLINEAGE_URL``, ``OPENLINEAGE_API_KEY`` and ``OPENLINEAGE_NAMESPACE``, plus ``extra``."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
        keys = ("OPENLINEAGE_URL", "OPENLINEAGE_API_KEY", "OPENLINEAGE_NAMESPACE")
        return {**base, **{k: self.env[k] for k in keys}, **extra}

    def cli(self, *args: str) -> Any:
        """``lineage-intake ARGS --json`` through the e2e helper (``stack_client.cli``), parsed; a non-zero exit
        raises ``CliError`` with the output, which callers read (``not_found``)."""
        result = stack_cli(self, *args, "--json", check=False)
        if result.returncode != 0:
            raise CliError(f"{CLI} {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
        return json.loads(result.stdout)

    def run(self, namespace: str, job: str, run_id: str) -> dict[str, Any] | None:
        """The merged run, or None while it is not in the Lineage table."""
        try:
            found: dict[str, Any] = self.cli("runs", "show", namespace, job, run_id)
        except CliError as exc:
            if "not_found" in str(exc) or "no run" in str(exc):
                return None
            raise
        return found

    def wait_for_runs(
        self, runs: Iterable[tuple[str, str]], namespace: str | None = None, timeout: float = 30.0
    ) -> dict[str, dict[str, Any]]:
        """Poll until every (job, runId) is merged with a final state (not RUNNING, nor AWAITING_START: the stack
        merges a START-less run after its short grace period); returns them by runId. Fails
        with the runs that never settled (the merge runs about a second after a terminal event is stored)."""
        wanted = {run_id: job for job, run_id in runs}
        found: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while True:
            for run_id, job in wanted.items():
                if run_id in found:
                    continue
                record = self.run(namespace or self.namespace, job, run_id)
                if record is not None and record.get("state") not in (None, "RUNNING", "START", "AWAITING_START"):
                    found[run_id] = record
            if len(found) == len(wanted) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        missing = {run_id: job for run_id, job in wanted.items() if run_id not in found}
        assert not missing, f"runs not merged within {timeout:.0f} s: {missing}"
        return found

    def wait_for_dataset(
        self, namespace: str, name: str, until: Callable[[dict[str, Any]], bool] | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        """``datasets show NAMESPACE NAME``, polled until the merge has made the dataset and ``until`` holds for
        it (events merge one by one, so a dataset can exist before every event about it is merged). Returns the
        last answer, for the caller to assert on."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                found: dict[str, Any] = self.cli("datasets", "show", namespace, name)
                if until is None or until(found) or time.monotonic() > deadline:
                    return found
            except CliError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.5)


def start_producer_stack(workdir: Path, *args: str) -> StackProcess:
    """The stack with DEBUG logs (the front logs one line per HTTP request) and a short START grace period (a
    DAG run of `airflow dags test` has no START), ready when its env file is written."""
    running = start_stack(workdir, "--log-level", "DEBUG", "--parameter", f"StartGraceSeconds={START_GRACE}", *args)
    return StackProcess(**{f.name: getattr(running, f.name) for f in fields(running)})


__all__ = ["CLI", "TERMINAL", "CliError", "StackProcess", "start_producer_stack", "stop_stack"]
