"""Shared test fixtures: moto-backed stacks built from template.yaml. Builders live in tests/helpers."""

from __future__ import annotations

import os
from collections.abc import Iterator

import boto3
import pytest
from lineage_intake_tools.local.template import Stack
from moto import mock_aws

from tests.helpers.aws import TEST_STACK, FakeLambdaContext, use_fake_aws_credentials

# No X-Ray daemon and no AWS account in tests.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    """A moto-backed AWS with fake credentials; nothing can reach a real account."""
    use_fake_aws_credentials(monkeypatch)
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


@pytest.fixture
def stack(aws: boto3.Session) -> Stack:
    """Every table, bucket and queue of template.yaml, created in moto."""
    TEST_STACK.create(aws)
    return TEST_STACK
