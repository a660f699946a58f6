"""Every function of template.yaml, invoked with every request in events/ that is meant for it, the way
``sam local invoke <Function> -e events/<file> --env-vars events/env.json`` runs it: the handler path, code folder
and environment read from template.yaml, the variables of events/env.json laid over the ones the template
declares (SAM ignores the others), and the layers on the path. AWS is moto.

A file is meant for the function whose logical id, without ``Function`` and in lower case, starts its name
(``ingest-*.json`` for ``IngestFunction``). ``env.json`` is the environment file. Each file's expected answer is
listed below, so a new file without an expectation fails until someone says what it is meant to produce.
"""

from __future__ import annotations

import base64
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from lineage_intake.store.lineage import LineageStore
from lineage_intake_tools.local.template import Stack, load_template

from tests.helpers.auth import admin_for, seed_example_token
from tests.helpers.aws import load_handler
from tests.helpers.corpus import EVENTS_DIR, event_file

#: The stack name whose physical names events/env.json uses (lineage-intake-EventsTable, ...).
ENV_STACK = "lineage-intake"
ENV_FILE = "env.json"


def poisoned_second_record(event: dict[str, Any]) -> list[str]:
    """The poisoned record and every record after it (the merge stops at the first failure)."""
    return [r["dynamodb"]["SequenceNumber"] for r in event["Records"][1:]]


#: File -> what the function answers: a status code (ingest, api), isAuthorized (authorizer) or the sequence numbers
#: reported in batchItemFailures (merge).
EXPECTED: dict[str, int | bool | Callable[[dict[str, Any]], list[str]]] = {
    "ingest-start.json": 200,
    "ingest-complete.json": 200,
    "ingest-gzip.json": 200,
    "ingest-gzip-no-header.json": 200,
    "ingest-batch.json": 200,
    "ingest-invalid.json": 400,
    "ingest-forbidden.json": 403,
    "authorizer-valid-token.json": True,
    "authorizer-wrong-token.json": False,
    "authorizer-missing-header.json": False,
    "api-namespaces.json": 200,
    "api-lineage-unknown-node.json": 404,
    "api-write-only-token.json": 403,
    "merge-stream-batch.json": lambda event: [],
    "merge-stream-poison.json": poisoned_second_record,
    "startgrace-message.json": lambda event: [],
}


def functions() -> list[str]:
    template = load_template()
    return [k for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"]


def prefix(logical_id: str) -> str:
    return logical_id.removesuffix("Function").lower() + "-"


def event_files() -> list[str]:
    return sorted(p.name for p in EVENTS_DIR.glob("*.json") if p.name != ENV_FILE)


def function_for(file_name: str) -> str:
    owners = [f for f in functions() if file_name.startswith(prefix(f))]
    assert len(owners) == 1, f"events/{file_name} is meant for no function of template.yaml (or for several)"
    return owners[0]


CASES = [(function_for(name), name) for name in event_files()]


def declared_variables(stack: Stack, logical_id: str) -> dict[str, str]:
    return stack.function(logical_id).environment


@pytest.fixture
def env_stack(aws: boto3.Session) -> Stack:
    """The template's resources in moto under the names events/env.json uses."""
    stack = Stack.from_template(prefix=ENV_STACK)
    stack.create(aws)
    return stack


def sam_local_invoke(stack: Stack, logical_id: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Load the handler as `sam local invoke` does, with --env-vars events/env.json."""
    overrides = json.loads((EVENTS_DIR / ENV_FILE).read_text())[logical_id]
    declared = declared_variables(stack, logical_id)
    module = load_handler(stack, logical_id, monkeypatch, **{k: v for k, v in overrides.items() if k in declared})
    handler = getattr(getattr(module, "logger", None), "registered_handler", None)
    if isinstance(handler, logging.StreamHandler):
        handler.stream = sys.stdout  # Powertools keeps the stream of an earlier test's first Logger
    return module


def store_new_images(session: boto3.Session, table: str, event: dict[str, Any]) -> None:
    """Put each record's NewImage: the Events table as it was when the stream batch was written."""
    ddb = session.client("dynamodb")
    for record in event["Records"]:
        item = {
            name: {"B": base64.b64decode(value["B"])} if "B" in value else value
            for name, value in record["dynamodb"]["NewImage"].items()
        }
        ddb.put_item(TableName=table, Item=item)


# ---------------------------------------------------------------------------- the files themselves
def test_every_event_file_has_an_expected_answer() -> None:
    assert sorted(EXPECTED) == event_files()


def test_every_function_has_at_least_one_event_file() -> None:
    assert {f for f, _ in CASES} == set(functions())


def test_every_function_handler_exists_where_the_template_says(stack: Stack) -> None:
    for logical_id in functions():
        spec = stack.function(logical_id)
        assert (spec.code_dir / f"{spec.module}.py").is_file(), logical_id
        assert spec.layer_dirs, f"{logical_id} has no layer"
        assert all((d / "lineage_intake").is_dir() for d in spec.layer_dirs)


def test_env_json_has_a_block_for_every_function_with_only_variables_the_template_declares(stack: Stack) -> None:
    env = json.loads((EVENTS_DIR / ENV_FILE).read_text())
    assert set(env) == set(functions())
    named = Stack.from_template(prefix=ENV_STACK)
    for logical_id, variables in env.items():
        declared = declared_variables(named, logical_id)
        assert set(variables) <= set(declared), f"{logical_id}: {set(variables) - set(declared)} are not declared"
        for key, value in variables.items():
            # The values are the template's, resolved for a stack named lineage-intake.
            assert value == declared[key], f"{logical_id}.{key}: env.json has {value!r}, the template {declared[key]!r}"


# ---------------------------------------------------------------------------- the invocations
@pytest.mark.parametrize(("logical_id", "file_name"), CASES, ids=[name for _, name in CASES])
def test_sam_local_invoke_answers_what_the_event_file_is_meant_to_produce(
    logical_id: str,
    file_name: str,
    env_stack: Stack,
    aws: boto3.Session,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
) -> None:
    event = event_file(file_name)
    expected = EXPECTED[file_name]
    if logical_id == "AuthorizerFunction":
        seed_example_token(admin_for(env_stack, aws), {"my-namespace", "default"})
    if logical_id == "MergeFunction":
        store_new_images(aws, env_stack.physical_name("EventsTable"), event)
    if logical_id == "StartGraceFunction":  # the run's COMPLETE is stored, its START never came
        complete_only = event_file("merge-stream-batch.json")
        complete_only["Records"] = [
            r for r in complete_only["Records"] if r["dynamodb"]["NewImage"]["eventType"]["S"] == "COMPLETE"
        ]
        store_new_images(aws, env_stack.physical_name("EventsTable"), complete_only)
    app = sam_local_invoke(env_stack, logical_id, monkeypatch)
    handler = getattr(app, env_stack.function(logical_id).handler)

    answer = json.loads(json.dumps(handler(event, lambda_context)))  # Lambda returns JSON

    if logical_id == "IngestFunction":
        assert answer["statusCode"] == expected, answer["body"]
        body = json.loads(answer["body"])
        if expected == 200:
            assert body["status"] in ("accepted", "success")
    elif logical_id == "ApiFunction":
        assert answer["statusCode"] == expected, answer["body"]
        body = json.loads(answer["body"])
        assert body == {"namespaces": []} if expected == 200 else body["code"] == expected
    elif logical_id == "AuthorizerFunction":
        assert answer["isAuthorized"] is expected
        if expected:
            assert set(answer["context"]) == {"tokenId", "connections", "scopes"}
    elif logical_id == "MergeFunction":
        assert callable(expected)
        failed = [f["itemIdentifier"] for f in answer["batchItemFailures"]]
        assert failed == expected(event)
        # The good run of both batches is merged: my-namespace/my-job/d46e465b-... is COMPLETE.
        store = LineageStore(aws.client("dynamodb"), env_stack.physical_name("LineageTable"))
        run = store.get_run("my-namespace", "my-job", "d46e465b-d358-4d32-83d4-df660ff614dd")
        assert run is not None and run["state"] == "COMPLETE"
    elif logical_id == "StartGraceFunction":
        assert callable(expected)
        assert [f["itemIdentifier"] for f in answer["batchItemFailures"]] == expected(event)
        # The START-less run is merged from what it has
        store = LineageStore(aws.client("dynamodb"), env_stack.physical_name("LineageTable"))
        run = store.get_run("my-namespace", "my-job", "d46e465b-d358-4d32-83d4-df660ff614dd")
        assert run is not None and run["state"] == "COMPLETE" and run["startMissing"] is True
    else:
        pytest.fail(f"no assertion for {logical_id}: add one")


def test_the_readme_commands_use_files_that_exist() -> None:
    """docs/local.md shows `sam local invoke` for each function; every -e file it names exists."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "local.md").read_text(encoding="utf-8")
    commands = [line.strip() for line in doc.splitlines() if line.strip().startswith("sam local invoke ")]
    assert {c.split()[3] for c in commands} == set(functions())
    for command in commands:
        words = command.split()
        assert (Path(__file__).resolve().parents[2] / words[words.index("-e") + 1]).is_file(), command
        assert words[words.index("--env-vars") + 1] == "events/env.json"
