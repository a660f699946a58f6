"""Fixtures of the handler tests: the template's functions loaded as Lambda would, on the moto stack of
tests/conftest.py, and a pipeline that feeds them. A module that needs another setup defines its own."""

from __future__ import annotations

from types import ModuleType

import boto3
import pytest
from lineage_intake_tools.local.template import Stack

from tests.helpers.aws import load_handler
from tests.helpers.pipeline import Pipeline


@pytest.fixture
def pipeline(stack: Stack, aws: boto3.Session) -> Pipeline:
    return Pipeline(aws, stack)


@pytest.fixture
def ingest(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_handler(stack, "IngestFunction", monkeypatch)


@pytest.fixture
def merge_app(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_handler(stack, "MergeFunction", monkeypatch)


@pytest.fixture
def api(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_handler(stack, "ApiFunction", monkeypatch)
