"""Fixtures of the end-to-end tests: the local stack as users run it, and a bare moto server.

- ``local_stack``: ``python -m lineage_intake_tools.local.stack --port 0`` in a subprocess (what ``make run`` runs),
  once per test session, with a short authorizer cache TTL and START grace period. Its logs go to a file that is
  printed when a test fails. It is stopped with SIGINT (Ctrl-C) at the end, and every process it started is
  checked gone.
- ``moto_server``: moto's server in a thread on a free loopback port, for component tests that need the
  DynamoDB Streams API (moto's in-process mock does not route it). Reset before each test that uses it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from lineage_intake_tools.local.template import Stack

from tests.helpers.local_stack import (
    AUTH_CACHE_TTL,
    START_GRACE,
    MotoServer,
    RunningStack,
    ServerStack,
    start_stack,
    stop_stack,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    tmp = tmp_path_factory.mktemp("local-stack")
    stack = start_stack(tmp, "--auth-cache-ttl", str(AUTH_CACHE_TTL), "--parameter", f"StartGraceSeconds={START_GRACE}")
    try:
        yield stack
    finally:
        stop_stack(stack)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    if report.when == "call" and report.failed and "local_stack" in getattr(item, "fixturenames", ()):
        stack = item.funcargs.get("local_stack")  # type: ignore[attr-defined]
        if isinstance(stack, RunningStack):
            report.sections.append(("local stack log (last 60 lines)", "\n".join(stack.logs().splitlines()[-60:])))
            report.sections.append(("local stack stderr (last 30 lines)", "\n".join(stack.errors().splitlines()[-30:])))
    return report


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield MotoServer(endpoint=f"http://{host}:{port}", host=host, port=port)
    finally:
        server.stop()


@pytest.fixture
def server_stack(moto_server: MotoServer) -> Iterator[ServerStack]:
    moto_server.reset()
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    template = Stack.from_template(prefix="test")
    template.create(session, moto_server.endpoint)
    stack = ServerStack(template=template, endpoint=moto_server.endpoint, session=session, clients=[])
    try:
        yield stack
    finally:
        for client in stack.clients:
            client.close()
