"""Fixtures of the producers suite: the local stack, and each real producer in its own cached venv.

The suite runs with ``make test-producers`` (``.ci/run`` calls it after ``make test``); plain ``pytest`` leaves it
out (``-m "not producers"`` in pyproject.toml) because installing the producers takes minutes on a fresh machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers.producer_stack import StackProcess, start_producer_stack, stop_stack
from tests.helpers.producer_venv import ProducerVenv, ensure_venv

#: Producers to leave out, comma-separated (``LINEAGE_INTAKE_SKIP_PRODUCERS=airflow``), for a machine where
#: one cannot be installed. Each skip says why.
SKIP_VARIABLE = "LINEAGE_INTAKE_SKIP_PRODUCERS"
_VENVS: list[ProducerVenv] = []


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    stack = start_producer_stack(tmp_path_factory.mktemp("producers-stack"))
    try:
        yield stack
    finally:
        stop_stack(stack)


def producer_venv(name: str) -> ProducerVenv:
    skipped = {p.strip() for p in os.environ.get(SKIP_VARIABLE, "").split(",") if p.strip()}
    if name in skipped:
        pytest.skip(f"{name} is skipped by {SKIP_VARIABLE}")
    venv = ensure_venv(name)
    _VENVS.append(venv)
    return venv


@pytest.fixture(scope="session")
def dbt_venv() -> ProducerVenv:
    return producer_venv("dbt")


@pytest.fixture(scope="session")
def airflow_venv() -> ProducerVenv:
    return producer_venv("airflow")


@pytest.fixture(scope="session")
def python_venv() -> ProducerVenv:
    return producer_venv("python")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    if report.when == "call" and report.failed:
        stack = getattr(item, "funcargs", {}).get("local_stack")
        if isinstance(stack, StackProcess):
            report.sections.append(("local stack log (tail)", stack.tail()))
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Where each producer's venv is and whether this run installed it (and how long that took)."""
    if not _VENVS:
        return
    terminalreporter.section("producer venvs")
    for venv in _VENVS:
        took = "reused" if venv.install_seconds is None else f"installed in {venv.install_seconds:.0f} s"
        terminalreporter.write_line(f"{venv.name}: {venv.path} ({took})")
