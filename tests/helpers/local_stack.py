"""The local stack as the e2e tests run it: a `make run` process, or the template on a bare moto server."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from lineage_intake_tools.envfile import read_env_file
from lineage_intake_tools.local.stack import command as stack_command
from lineage_intake_tools.local.template import ROOT, Stack

#: The authorizer cache TTL of the session's stack: short, so that the revocation test stays fast.
AUTH_CACHE_TTL = 2
#: The stack's StartGraceSeconds in e2e tests (`make run START_GRACE_SECONDS=5` does the same).
START_GRACE = 5
START_TIMEOUT = 60.0


# ---------------------------------------------------------------------------- the local stack
@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    env_file: Path
    log_file: Path  # stdout: the JSON log lines (and the banner)
    err_file: Path  # stderr: Python warnings and tracebacks, as a Lambda function's stderr
    env: dict[str, str]

    @property
    def url(self) -> str:
        return self.env["OPENLINEAGE_URL"]

    @property
    def api_key(self) -> str:
        return self.env["OPENLINEAGE_API_KEY"]

    @property
    def namespace(self) -> str:
        return self.env["OPENLINEAGE_NAMESPACE"]

    @property
    def read_token(self) -> str:
        """The read+write token the stack creates for the read API (``LINEAGE_READ_TOKEN``)."""
        return self.env["LINEAGE_READ_TOKEN"]

    def cli_env(self) -> dict[str, str]:
        """The environment a user has after ``set -a; . .local/openlineage.env; set +a``."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LINEAGE_", "OPENLINEAGE_"))}
        return {**base, **self.env}

    def session(self) -> boto3.Session:
        return boto3.Session(
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region_name=self.env["AWS_REGION"],
        )

    def client(self, service: str) -> Any:
        from lineage_intake_tools.envfile import endpoint_url

        return self.session().client(service, endpoint_url=endpoint_url(self.env, service))

    def logs(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace")

    def errors(self) -> str:
        return self.err_file.read_text(encoding="utf-8", errors="replace")


def children_of(pid: int) -> set[int]:
    """Every descendant process of ``pid`` (from /proc), including those in other sessions."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("PPid:"):
                parents[int(entry.name)] = int(line.split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


#: The banner's last line (tools/lineage_intake_tools/local/stack.py ``_banner``).
READY_LINE = "# ready: POST OpenLineage events to"


def start_stack(tmp: Path, *args: str) -> RunningStack:
    """Start ``python -m lineage_intake_tools.local.stack`` and wait for its env file (written when ready) and its
    banner's ready line."""
    tmp.mkdir(parents=True, exist_ok=True)
    env_file = tmp / "openlineage.env"
    log_file = tmp / "stack.log"
    err_file = tmp / "stack.err"
    with log_file.open("ab") as log, err_file.open("ab") as err:
        process = subprocess.Popen(
            stack_command(env_file, *args),
            cwd=ROOT,
            stdout=log,
            stderr=err,
            env={k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPENLINEAGE_"))},
        )
    deadline = time.monotonic() + START_TIMEOUT
    # The env file is the machine-readable ready signal; the banner on stdout follows it. Waiting for both keeps
    # a test that reads the banner from racing the stack's stdout on a loaded machine.
    while not (env_file.exists() and READY_LINE in log_file.read_text(errors="replace")):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            output = log_file.read_text(errors="replace") + err_file.read_text(errors="replace")
            raise AssertionError(f"the local stack did not start:\n{output}")
        time.sleep(0.05)
    return RunningStack(
        process=process, env_file=env_file, log_file=log_file, err_file=err_file, env=read_env_file(env_file)
    )


def stop_stack(stack: RunningStack, timeout: float = 20.0) -> int:
    """Ctrl-C, as a user would; returns the exit code. Kills whatever is left if the stop hangs."""
    descendants = children_of(stack.process.pid)
    if stack.process.poll() is None:
        stack.process.send_signal(signal.SIGINT)
    try:
        code = stack.process.wait(timeout)
    except subprocess.TimeoutExpired:
        stack.process.kill()
        code = stack.process.wait()
    deadline = time.monotonic() + 5
    while any(alive(p) for p in descendants) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in descendants:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    return code


# ---------------------------------------------------------------------------- a bare moto server
@dataclass
class MotoServer:
    endpoint: str
    host: str
    port: int

    def reset(self) -> None:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            connection.request("POST", "/moto-api/reset")
            connection.getresponse().read()
        finally:
            connection.close()


@dataclass
class ServerStack:
    """The template's resources on the bare moto server, with clients for it."""

    template: Stack
    endpoint: str
    session: boto3.Session
    clients: list[Any]

    def client(self, service: str) -> Any:
        client = self.session.client(service, endpoint_url=self.endpoint)
        self.clients.append(client)
        return client


def seconds_until_merged(stack: RunningStack, namespace: str, job: str, run_id: str, state: str, limit: float) -> float:
    """How long until the run is in the Lineage table in ``state``; fails after ``limit`` seconds."""
    from lineage_intake.store.lineage import LineageStore

    store = LineageStore(stack.client("dynamodb"), stack.env["LINEAGE_LINEAGE_TABLE"])
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < limit:
        run = store.get_run(namespace, job, run_id)
        if run is not None and run.get("state") == state:
            return elapsed
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} of {namespace}/{job} was not merged as {state} within {limit} s")
