"""Fake AWS for tests: credentials that cannot reach an account, a Lambda context, handlers loaded as SAM does."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from dataclasses import dataclass
from types import ModuleType

import pytest
from lineage_intake_tools.local.template import Stack

_counter = itertools.count()

#: The stack the ``stack`` fixture builds; table and bucket names come from template.yaml through it.
TEST_STACK = Stack.from_template(prefix="test")


@dataclass
class FakeLambdaContext:
    """A Lambda context whose remaining time is a fake clock: it moves only when a test calls ``spend``, so a
    test of the merge's time guard drives time without sleeping and without flaking."""

    function_name: str = "test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "test"
    #: A fresh invocation of the longest function (MergeFunction's Timeout, 120 s).
    remaining_ms: int = 120_000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.remaining_ms)

    def spend(self, milliseconds: int) -> None:
        self.remaining_ms -= milliseconds


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
