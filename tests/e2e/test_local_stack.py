"""Real OpenLineage clients against the local stack (``make run``), checked through the ``lineage-intake`` CLI.

One stack serves the whole module (see ``conftest.local_stack``); every test uses fresh run ids so the tests do
not depend on each other. Events come from the fixture corpus, with their job namespace set to the stack's
connection (``default``) and a new runId.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from lineage_intake_tools.local.demo import client_event, make_client, with_namespace

from tests.helpers.corpus import corpus_json
from tests.helpers.local_stack import AUTH_CACHE_TTL, RunningStack
from tests.helpers.stack_client import CLI, cli, cli_json, fresh_run, post, stored_events, wait_merged


@pytest.fixture(scope="module")
def lineage_cli(local_stack: RunningStack) -> RunningStack:
    """The stack, once the CLI is known to have the lineage commands (issue 4) registered."""
    result = cli(local_stack, "runs", "--help", check=False)
    if result.returncode != 0:
        pytest.fail(
            "`lineage-intake runs` does not exist: lineage_intake_tools.cli.lineage.add_commands is not in "
            f"lineage_intake_tools.cli.COMMAND_GROUPS ({result.stderr.strip().splitlines()[-1:]})"
        )
    return local_stack


def assert_stored_and_merged(stack: RunningStack, start: Mapping[str, Any]) -> dict[str, Any]:
    namespace, job, run_id = start["job"]["namespace"], start["job"]["name"], start["run"]["runId"]
    wait_merged(stack, namespace, job, run_id)
    run = cli_json(stack, "runs", "show", namespace, job, run_id)
    assert run["state"] == "COMPLETE"
    assert run["eventCount"] == 2
    assert run["startTime"] == "2019-05-09T19:49:24.201361Z"
    assert run["endTime"] == "2019-05-09T19:50:24.201361Z"
    assert [(d["namespace"], d["name"]) for d in run["inputs"]] == [("my-namespace", "my-input")]
    assert [(d["namespace"], d["name"]) for d in run["outputs"]] == [("my-namespace", "my-output")]
    assert len(stored_events(stack, namespace, job, run_id)) == 2
    return dict(run)


@pytest.fixture
def client(lineage_cli: RunningStack) -> Iterator[Any]:
    ol = make_client(lineage_cli.url, lineage_cli.api_key, compression=None)
    yield ol
    ol.close()


# ---------------------------------------------------------------------------- real clients
def test_the_python_client_sends_events_that_are_stored_and_merged(lineage_cli: RunningStack, client: Any) -> None:
    start, complete = fresh_run(lineage_cli)
    client.emit(client_event(start))
    client.emit(client_event(complete))
    assert_stored_and_merged(lineage_cli, start)


def test_the_python_client_with_gzip_sends_events_that_are_stored_and_merged(lineage_cli: RunningStack) -> None:
    start, complete = fresh_run(lineage_cli)
    ol = make_client(lineage_cli.url, lineage_cli.api_key, compression="gzip")
    try:
        ol.emit(client_event(start))
        ol.emit(client_event(complete))
    finally:
        ol.close()
    assert_stored_and_merged(lineage_cli, start)
    output = start["outputs"][0]
    dataset = cli_json(lineage_cli, "datasets", "show", output["namespace"], output["name"])
    assert {"namespace": lineage_cli.namespace, "name": start["job"]["name"]} in [
        {"namespace": j["namespace"], "name": j["name"]} for j in dataset["upstream"]
    ]


def java_post(stack: RunningStack, event: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
    """POST ``event`` gzip-compressed with ``Transfer-Encoding: chunked``, as Apache HttpClient sends the Java
    client's ``GzipCompressingEntity`` (its length is not known up front), with ``headers``."""
    url = urlsplit(stack.url + "/api/v1/lineage")
    body = gzip.compress(json.dumps(event).encode("utf-8"))
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        connection.putrequest("POST", url.path, skip_accept_encoding=True)
        for name, value in {**headers, "Transfer-Encoding": "chunked"}.items():
            connection.putheader(name, value)
        connection.endheaders()
        for offset in range(0, len(body), 100):
            chunk = body[offset : offset + 100]
            connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        connection.send(b"0\r\n\r\n")
        answer = connection.getresponse()
        payload: dict[str, Any] = json.loads(answer.read())
    finally:
        connection.close()
    assert answer.status == 200, payload
    return payload


def test_a_java_client_request_with_a_chunked_gzip_body_and_no_content_encoding_is_stored_and_merged(
    lineage_cli: RunningStack,
) -> None:
    """As older Java clients send it: the full lineage URL, JSON with a charset, gzip without Content-Encoding,
    and Transfer-Encoding: chunked (the body's length is not known up front)."""
    start, complete = fresh_run(lineage_cli)
    headers = {
        "Content-Type": "application/json; charset=UTF-8",
        "Authorization": f"Bearer {lineage_cli.api_key}",
        "User-Agent": "openlineage-java/1.23.0",
    }
    for event in (start, complete):
        assert java_post(lineage_cli, event, headers)["status"] == "accepted"
    assert_stored_and_merged(lineage_cli, start)


def test_the_spark_java_clients_gzip_request_is_stored_and_merged(lineage_cli: RunningStack) -> None:
    """What openlineage-spark sends with ``transport.type=http``, ``url`` = the base URL, ``endpoint`` =
    ``/api/v1/lineage``, ``auth.type=api_key`` and ``compression=gzip``. From openlineage-java's HttpTransport
    (client/java/.../transports/HttpTransport.java): the endpoint replaces the URL's path; the headers are
    ``Accept`` and ``Content-Type`` ``application/json; charset=UTF-8`` (HttpCore's APPLICATION_JSON),
    ``Authorization: Bearer <apiKey>`` (ApiKeyTokenProvider) and ``Content-Encoding: gzip``; the body is a
    ``GzipCompressingEntity``, which has no length, so Apache HttpClient sends it chunked."""
    # Given a run's START and COMPLETE, as the Spark listener emits them
    start, complete = fresh_run(lineage_cli)
    headers = {
        "Accept": "application/json; charset=UTF-8",
        "Content-Type": "application/json; charset=UTF-8",
        "Authorization": f"Bearer {lineage_cli.api_key}",
        "Content-Encoding": "gzip",
        "User-Agent": "Apache-HttpClient/5.4 (Java/17.0.12)",
    }
    # When the Java client POSTs them
    answers = [java_post(lineage_cli, event, headers) for event in (start, complete)]
    # Then both are accepted once, stored and merged
    assert [a["status"] for a in answers] == ["accepted", "accepted"]
    assert_stored_and_merged(lineage_cli, start)


def test_a_fail_without_start_is_merged_after_the_grace_period_by_the_queue_function(
    lineage_cli: RunningStack,
) -> None:
    # Given a run whose terminal event comes alone (a worker that died before its START was sent)
    start, complete = fresh_run(lineage_cli)
    complete["eventType"] = "FAIL"
    assert post(lineage_cli, json.dumps(complete), lineage_cli.api_key).status_code == 200
    namespace, job, run_id = start["job"]["namespace"], start["job"]["name"], start["run"]["runId"]
    # Then it waits for its START, then StartGraceQueue's delay (START_GRACE seconds) merges it from what it has
    wait_merged(lineage_cli, namespace, job, run_id, state="AWAITING_START")
    wait_merged(lineage_cli, namespace, job, run_id, state="FAIL")
    run = cli_json(lineage_cli, "runs", "show", namespace, job, run_id)
    assert run["startMissing"] is True and run["startTime"] is None


def test_a_batch_post_stores_and_merges_every_event(lineage_cli: RunningStack) -> None:
    first, second = fresh_run(lineage_cli), fresh_run(lineage_cli)
    answer = post(lineage_cli, json.dumps([*first, *second]), lineage_cli.api_key, "/api/v1/lineage/batch")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "success"
    assert answer.json()["summary"]["accepted"] == 4
    for start, _ in (first, second):
        assert_stored_and_merged(lineage_cli, start)


def test_the_cli_works_in_a_shell_that_sourced_the_env_file(lineage_cli: RunningStack, client: Any) -> None:
    start, complete = fresh_run(lineage_cli)
    client.emit(client_event(start))
    client.emit(client_event(complete))
    namespace, job, run_id = start["job"]["namespace"], start["job"]["name"], start["run"]["runId"]
    wait_merged(lineage_cli, namespace, job, run_id)
    script = (
        f"set -a; . {shlex.quote(str(lineage_cli.env_file))}; set +a; "
        f"{shlex.quote(str(CLI))} runs show {namespace} {job} {run_id} --json"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LINEAGE_", "OPENLINEAGE_"))}
    result = subprocess.run(["bash", "-c", script], env=clean, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "COMPLETE"


# ---------------------------------------------------------------------------- authorization
def test_a_request_without_an_api_key_is_denied_with_401_and_nothing_is_stored(local_stack: RunningStack) -> None:
    start, _ = fresh_run(local_stack)
    answer = post(local_stack, json.dumps(start), token=None)
    assert answer.status_code == 401
    assert answer.json() == {"message": "Unauthorized"}
    empty = requests.post(
        local_stack.url + "/api/v1/lineage", data=json.dumps(start), headers={"Authorization": ""}, timeout=30
    )
    assert empty.status_code == 401
    assert stored_events(local_stack, start["job"]["namespace"], start["job"]["name"], start["run"]["runId"]) == []


@pytest.mark.parametrize(
    "token",
    [
        "li_0123456789abcdef_" + "A" * 43,  # well formed, unknown
        "not-a-lineage-intake-token",
    ],
)
def test_a_wrong_api_key_is_denied_with_403_and_nothing_is_stored(local_stack: RunningStack, token: str) -> None:
    start, _ = fresh_run(local_stack)
    answer = post(local_stack, json.dumps(start), token)
    assert answer.status_code == 403
    assert answer.json() == {"message": "Forbidden"}
    assert stored_events(local_stack, start["job"]["namespace"], start["job"]["name"], start["run"]["runId"]) == []


def test_the_python_client_gets_the_denial_as_an_http_error(local_stack: RunningStack) -> None:
    start, _ = fresh_run(local_stack)
    ol = make_client(local_stack.url, "li_0123456789abcdef_" + "B" * 43)
    try:
        with pytest.raises(requests.HTTPError) as denied:
            ol.emit(client_event(start))
    finally:
        ol.close()
    assert denied.value.response is not None
    assert denied.value.response.status_code == 403


def test_a_token_scoped_to_another_connection_gets_403_from_ingest(local_stack: RunningStack) -> None:
    other = f"other-{uuid.uuid4().hex[:8]}"
    cli_json(local_stack, "connections", "create", other)
    token = cli_json(local_stack, "tokens", "create", "--connection", other)["token"]
    start, _ = fresh_run(local_stack)  # job namespace: default
    answer = post(local_stack, json.dumps(start), token)
    assert answer.status_code == 403
    body = answer.json()
    assert body["error"] == "forbidden"  # ingest's answer, not the gateway's: the authorizer allowed the token
    assert repr(local_stack.namespace) in body["message"]
    assert stored_events(local_stack, start["job"]["namespace"], start["job"]["name"], start["run"]["runId"]) == []


def test_a_revoked_token_is_denied_once_the_authorizer_cache_ttl_passes(local_stack: RunningStack) -> None:
    created = cli_json(local_stack, "tokens", "create", "--connection", local_stack.namespace, "--name", "revoke-me")
    token, token_id = created["token"], created["tokenId"]
    first, _ = fresh_run(local_stack)
    primed_at = time.monotonic()
    assert post(local_stack, json.dumps(first), token).status_code == 200  # this decision is now cached
    cached_until_at_least = primed_at + AUTH_CACHE_TTL
    cached_until_at_most = time.monotonic() + AUTH_CACHE_TTL

    cli(local_stack, "tokens", "revoke", token_id)
    second, _ = fresh_run(local_stack)
    within_window = post(local_stack, json.dumps(second), token)
    if time.monotonic() < cached_until_at_least:
        # Answered entirely inside the TTL: API Gateway serves the cached allow, as the template documents.
        assert within_window.status_code == 200

    time.sleep(max(0.0, cached_until_at_most - time.monotonic()) + 0.3)
    third, _ = fresh_run(local_stack)
    denied = post(local_stack, json.dumps(third), token)
    assert denied.status_code == 403
    assert denied.json() == {"message": "Forbidden"}


# ---------------------------------------------------------------------------- the gateway
@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/api/v1/api/v1/lineage"), ("POST", "/api/v1/other"), ("GET", "/")]
)
def test_wrong_urls_get_a_404_that_names_the_right_endpoints_without_a_token(
    local_stack: RunningStack, method: str, path: str
) -> None:
    # Given a client that put the path into OPENLINEAGE_URL, or any other unknown path; no Authorization header
    answer = requests.request(method, local_stack.url + path, timeout=30)
    # Then the $default route answers 404 in Marquez's error shape, naming the endpoints (not a bare 401 or 404)
    assert answer.status_code == 404
    body = answer.json()
    assert body["code"] == 404 and "POST events to /api/v1/lineage" in body["message"]
    assert "OPENLINEAGE_URL is the base URL" in body["message"]
    assert answer.headers["apigw-requestid"]


def test_a_trailing_slash_on_the_lineage_endpoint_is_the_same_endpoint(local_stack: RunningStack) -> None:
    start, _ = fresh_run(local_stack)
    answer = post(local_stack, json.dumps(start), local_stack.api_key, path="/api/v1/lineage/")
    assert answer.status_code == 200 and answer.json()["status"] == "accepted"
    assert len(stored_events(local_stack, start["job"]["namespace"], start["job"]["name"], start["run"]["runId"])) == 1


def test_invalid_events_get_ingests_400_through_the_gateway(local_stack: RunningStack) -> None:
    answer = post(local_stack, json.dumps(corpus_json("openlineage/events/proxy-fluentd/event_no_run_id.json")), None)
    assert answer.status_code == 401  # no key: the gateway answers first
    event = with_namespace(corpus_json("openlineage/events/proxy-fluentd/event_no_run_id.json"), local_stack.namespace)
    answer = post(local_stack, json.dumps(event), local_stack.api_key)
    assert answer.status_code == 400
    assert any(e["path"] == "run.runId" for e in answer.json()["errors"])


def test_the_stack_logs_structured_json_lines_on_stdout_from_every_function(
    lineage_cli: RunningStack, client: Any
) -> None:
    start, complete = fresh_run(lineage_cli)
    client.emit(client_event(start))
    client.emit(client_event(complete))
    wait_merged(lineage_cli, start["job"]["namespace"], start["job"]["name"], start["run"]["runId"])
    expected = {"ingest", "authorizer", "merge", "local-stack"}
    deadline = time.monotonic() + 5  # the merge logs its line just after it wrote the run
    while True:
        services = set()
        for line in lineage_cli.logs().splitlines():
            if not line.strip() or line.startswith("#") or line.split("=", 1)[0] in lineage_cli.env:
                continue  # the banner: the env lines for copying, and comments
            record = json.loads(line)  # every other line is one JSON object
            assert isinstance(record, dict)
            if "service" in record and "level" in record:
                services.add(record["service"])
        if expected <= services or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert expected <= services
