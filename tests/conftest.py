"""Shared test fixtures: moto-backed stacks built from template.yaml, and handlers loaded as SAM would."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
from lineage_intake_tools.local.template import ROOT, Stack
from moto import mock_aws

EVENTS_DIR = ROOT / "events"
FIXTURES = ROOT / "tests" / "fixtures"
CORPUS = FIXTURES / "corpus"

# No X-Ray daemon and no AWS account in tests.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

_counter = itertools.count()


@dataclass
class FakeLambdaContext:
    function_name: str = "test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def use_fake_aws_credentials(patch: pytest.MonkeyPatch) -> None:
    """Fake credentials and no endpoint or profile override, so that nothing can reach a real account."""
    for key, value in FAKE_AWS_ENV.items():
        patch.setenv(key, value)
    patch.delenv("AWS_ENDPOINT_URL", raising=False)
    patch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    """A moto-backed AWS with fake credentials; nothing can reach a real account."""
    use_fake_aws_credentials(monkeypatch)
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


@pytest.fixture
def stack(aws: boto3.Session) -> Stack:
    """Every table, bucket and queue of template.yaml, created in moto."""
    built = Stack.from_template(prefix="test")
    built.create(aws)
    return built


def load_handler(stack: Stack, logical_id: str, monkeypatch: pytest.MonkeyPatch, **env: str) -> ModuleType:
    """Import a function's handler module the way `sam local invoke` runs it: code folder and layers on the
    path, environment from template.yaml. Each call gives a fresh module (fresh cold start)."""
    spec = stack.function(logical_id)
    for key, value in {**spec.environment, **env}.items():
        monkeypatch.setenv(key, value)
    for folder in [*spec.layer_dirs, spec.code_dir]:
        if str(folder) not in sys.path:
            monkeypatch.syspath_prepend(str(folder))
    name = f"{logical_id.lower()}_{spec.module}_{next(_counter)}"
    module_spec = importlib.util.spec_from_file_location(name, spec.code_dir / f"{spec.module}.py")
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    return module


def event_file(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))


def corpus_json(relative: str) -> Any:
    return json.loads((CORPUS / relative).read_text(encoding="utf-8"))


def concrete_corpus_events() -> list[tuple[str, dict[str, Any]]]:
    """Every concrete event of the fixture corpus, as (id, event); arrays are split."""
    out = []
    for line in (CORPUS / "INDEX.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        path, _group, kind = line.split("\t")[:3]
        if kind not in ("event", "event-array"):
            continue
        value = corpus_json(path)
        if isinstance(value, list):
            out += [(f"{path}[{i}]", ev) for i, ev in enumerate(value)]
        else:
            out.append((path, value))
    return out


_FLUENTD = "openlineage/events/proxy-fluentd/"
INVALID_FIXTURES = {
    _FLUENTD + "event_invalid_dataset_facet.json": "outputs[0].facets.ownership.owners[0].name",
    _FLUENTD + "event_invalid_input_dataset_facet.json": "inputs[0].inputFacets.dataQualityMetrics",
    _FLUENTD + "event_invalid_job_facet.json": "job.facets.ownership.owners[0].name",
    _FLUENTD + "event_invalid_output_dataset_facet.json": "outputs[0].outputFacets.outputStatistics.rowCount",
    _FLUENTD + "event_invalid_run_facet.json": "run.facets.parent.run.runId",
    _FLUENTD + "event_no_run_id.json": "run.runId",
}
