"""The authorizer function on moto, driven by the requests in events/ as API Gateway (payload 2.0) sends them.

``events/authorizer-valid-token.json`` carries a fixed fake token; the tests seed the Tokens table with a record
for it (see ``auth_fixtures.seed_example_token``), then invoke the handler loaded the way ``sam local invoke``
loads it, with the environment of template.yaml.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from lineage_intake.principal import Principal
from lineage_intake.service.admin import Admin
from lineage_intake.tokens import format_token, generate_secret, parse_time, utc_now
from lineage_intake_tools.local.template import Stack

from tests.helpers.auth import (
    EXAMPLE_SECRET,
    EXAMPLE_TOKEN,
    EXAMPLE_TOKEN_ID,
    MISSING_REQUEST,
    VALID_REQUEST,
    WRONG_REQUEST,
    admin_for,
    authorizer_request,
    everything_logged,
    ingest_request,
    load_authorizer,
    seed_example_token,
    structured_lines,
)
from tests.helpers.aws import load_handler
from tests.helpers.corpus import event_file
from tests.helpers.eventlog import is_quarantine_item, quarantined, table_items

DENIED = {"isAuthorized": False}


@pytest.fixture
def admin(stack: Stack, aws: boto3.Session) -> Admin:
    return admin_for(stack, aws)


@pytest.fixture
def authorizer(stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> ModuleType:
    return load_authorizer(stack, monkeypatch)


@pytest.fixture(autouse=True)
def _info_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)


def decide(app: ModuleType, request: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.handler(request, context)


def decision_lines(app: ModuleType, caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [line for line in structured_lines(app, caplog) if line["message"].startswith("authorization")]


# ---------------------------------------------------------------------- allowed
def test_a_valid_token_is_allowed_and_passes_its_connections_to_ingest(authorizer, admin, lambda_context) -> None:
    # Given the token of events/authorizer-valid-token.json, scoped to two connections
    seed_example_token(admin, {"production", "spark-prod"})
    # When API Gateway asks the authorizer
    answer = decide(authorizer, event_file(VALID_REQUEST), lambda_context)
    # Then the simple response allows it, with the context that ingest reads
    assert answer == {
        "isAuthorized": True,
        "context": {
            "tokenId": EXAMPLE_TOKEN_ID,
            "connections": '["production", "spark-prod"]',
            "scopes": '["write"]',
        },
    }
    assert Principal.from_context(answer["context"]) == Principal(
        EXAMPLE_TOKEN_ID, frozenset({"production", "spark-prod"})
    )


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_the_bearer_scheme_is_matched_case_insensitively(authorizer, admin, lambda_context, scheme) -> None:
    seed_example_token(admin, {"production"})
    answer = decide(authorizer, authorizer_request(f"{scheme} {EXAMPLE_TOKEN}"), lambda_context)
    assert answer["isAuthorized"] is True


def test_a_token_created_by_the_operator_is_allowed(authorizer, admin, lambda_context) -> None:
    admin.create_connection("production")
    issued = admin.create_token(["production"], name="airflow")
    answer = decide(authorizer, authorizer_request(f"Bearer {issued.token}"), lambda_context)
    assert answer["isAuthorized"] is True
    assert answer["context"]["tokenId"] == issued.record.token_id


# ---------------------------------------------------------------------- denied
def test_a_wrong_secret_with_a_known_token_id_is_denied(authorizer, admin, lambda_context, caplog) -> None:
    # Given the example token exists, and events/authorizer-wrong-token.json has its id with another secret
    seed_example_token(admin, {"production"})
    assert event_file(WRONG_REQUEST)["headers"]["authorization"] != f"Bearer {EXAMPLE_TOKEN}"
    # Then it is denied, and the log names the token id and the reason
    assert decide(authorizer, event_file(WRONG_REQUEST), lambda_context) == DENIED
    (line,) = decision_lines(authorizer, caplog)
    assert (line["tokenId"], line["outcome"], line["reason"]) == (EXAMPLE_TOKEN_ID, "deny", "wrong_secret")


def test_an_unknown_token_id_is_denied(authorizer, admin, lambda_context, caplog) -> None:
    seed_example_token(admin, {"production"})
    unknown = format_token("fedcba9876543210", generate_secret())
    assert decide(authorizer, authorizer_request(f"Bearer {unknown}"), lambda_context) == DENIED
    assert decision_lines(authorizer, caplog)[0]["reason"] == "unknown_token"


def test_an_expired_token_is_denied(authorizer, admin, lambda_context, caplog) -> None:
    seed_example_token(admin, {"production"}, expires_at=utc_now() - timedelta(seconds=1))
    assert decide(authorizer, event_file(VALID_REQUEST), lambda_context) == DENIED
    assert decision_lines(authorizer, caplog)[0]["reason"] == "expired"


def test_a_revoked_token_is_denied(authorizer, admin, lambda_context, caplog) -> None:
    # Given a token that was allowed
    seed_example_token(admin, {"production"})
    assert decide(authorizer, event_file(VALID_REQUEST), lambda_context)["isAuthorized"] is True
    # When the operator revokes it, then the next (uncached) request is denied
    admin.revoke_token(EXAMPLE_TOKEN_ID)
    assert decide(authorizer, event_file(VALID_REQUEST), lambda_context) == DENIED
    assert [line["reason"] for line in decision_lines(authorizer, caplog)] == ["ok", "revoked"]


def test_a_token_whose_connections_were_all_detached_is_denied(authorizer, admin, lambda_context, caplog) -> None:
    seed_example_token(admin, {"production"})
    admin.delete_connection("production", detach_tokens=True)
    assert decide(authorizer, event_file(VALID_REQUEST), lambda_context) == DENIED
    assert decision_lines(authorizer, caplog)[0]["reason"] == "no_connections"


def test_a_request_without_an_authorization_header_is_denied(authorizer, admin, lambda_context, caplog) -> None:
    seed_example_token(admin, {"production"})
    assert decide(authorizer, event_file(MISSING_REQUEST), lambda_context) == DENIED
    (line,) = decision_lines(authorizer, caplog)
    assert (line.get("tokenId"), line["reason"]) == (None, "missing_header")


MALFORMED = {
    "empty": ("", "missing_header"),
    "scheme only": ("Bearer", "malformed_token"),
    "basic auth": ("Basic dXNlcjpwYXNzd29yZA==", "not_bearer"),
    "token without scheme": (EXAMPLE_TOKEN, "not_bearer"),
    "10 KB header": ("Bearer " + EXAMPLE_TOKEN + "A" * 10 * 1024, "header_too_long"),
    "non-ascii bytes": ("Bearer " + EXAMPLE_TOKEN[:-2] + "\u00e9\u00ff", "not_ascii"),
    "latin-1 decoded": ("Bearer " + EXAMPLE_TOKEN.encode().decode("latin-1") + "\u00a0", "not_ascii"),
    "two tokens": (f"Bearer {EXAMPLE_TOKEN}, Bearer {EXAMPLE_TOKEN}", "malformed_token"),
    "truncated token": ("Bearer " + EXAMPLE_TOKEN[:-1], "malformed_token"),
    "not a lineage-intake token": ("Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc", "malformed_token"),
}


@pytest.mark.parametrize(("header", "reason"), MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_authorization_header_is_denied(authorizer, admin, lambda_context, caplog, header, reason) -> None:
    seed_example_token(admin, {"production"})
    assert decide(authorizer, authorizer_request(header), lambda_context) == DENIED
    assert decision_lines(authorizer, caplog)[0]["reason"] == reason


def test_headers_missing_from_the_request_are_denied(authorizer, lambda_context) -> None:
    request = event_file(VALID_REQUEST)
    del request["headers"]
    assert decide(authorizer, request, lambda_context) == DENIED


def test_the_authorizer_fails_closed_when_the_tokens_table_is_unavailable(
    authorizer, admin, aws, stack, lambda_context, caplog
) -> None:
    # Given a valid token, but the table is gone (any storage error would do)
    seed_example_token(admin, {"production"})
    aws.client("dynamodb").delete_table(TableName=stack.table_env()["TokensTableName"])
    # Then the request is denied, never allowed, and the error is logged with the token id
    assert decide(authorizer, event_file(VALID_REQUEST), lambda_context) == DENIED
    (line,) = decision_lines(authorizer, caplog)
    assert line["level"] == "ERROR"
    assert (line["tokenId"], line["reason"], line["error"]) == (EXAMPLE_TOKEN_ID, "error", "ResourceNotFoundException")


def test_the_authorizer_fails_closed_on_a_request_it_cannot_read(authorizer, lambda_context, caplog) -> None:
    assert decide(authorizer, {"headers": "not a mapping"}, lambda_context) == DENIED
    assert decide(authorizer, {"headers": {"authorization": 42}}, lambda_context) == DENIED
    assert decide(authorizer, ["not", "an", "event"], lambda_context) == DENIED  # type: ignore[arg-type]
    reasons = [(line["reason"], line.get("error")) for line in decision_lines(authorizer, caplog)]
    assert reasons == [("error", "AttributeError"), ("missing_header", None), ("error", "AttributeError")]


# ---------------------------------------------------------------------- logs and metrics
def test_no_log_line_contains_a_token_or_its_secret(authorizer, admin, lambda_context, capsys, caplog) -> None:
    # Given every kind of request: allowed, wrong secret, revoked, malformed, and a storage failure,
    # with every library logging at DEBUG (botocore logs its requests)
    caplog.set_level(logging.DEBUG)
    seed_example_token(admin, {"production"})
    wrong = event_file(WRONG_REQUEST)["headers"]["authorization"].removeprefix("Bearer ")
    decide(authorizer, event_file(VALID_REQUEST), lambda_context)
    decide(authorizer, event_file(WRONG_REQUEST), lambda_context)
    for header, _ in MALFORMED.values():
        decide(authorizer, authorizer_request(header), lambda_context)
    admin.revoke_token(EXAMPLE_TOKEN_ID)
    decide(authorizer, event_file(VALID_REQUEST), lambda_context)
    authorizer.authorizer().tokens.table = "no-such-table"
    decide(authorizer, event_file(VALID_REQUEST), lambda_context)
    # Then nothing printed or logged, by the function or by botocore, holds a token or a secret
    own_lines = json.dumps(structured_lines(authorizer, caplog))
    logged = everything_logged(authorizer, capsys, caplog)
    assert EXAMPLE_TOKEN_ID in own_lines
    for secret in (EXAMPLE_TOKEN, EXAMPLE_SECRET, wrong, wrong.rsplit("_", 1)[-1], "dXNlcjpwYXNzd29yZA=="):
        assert secret not in logged
    # And the function's own lines do not hold the stored hash either (botocore's DEBUG dumps of GetItem do)
    assert admin.tokens.get(EXAMPLE_TOKEN_ID).secret_hash not in own_lines  # type: ignore[union-attr]


def test_each_decision_is_one_log_line_with_the_token_id_and_the_outcome(
    authorizer, admin, lambda_context, caplog
) -> None:
    seed_example_token(admin, {"production"})
    decide(authorizer, event_file(VALID_REQUEST), lambda_context)
    (line,) = decision_lines(authorizer, caplog)
    assert (line["tokenId"], line["outcome"], line["reason"]) == (EXAMPLE_TOKEN_ID, "allow", "ok")
    assert line["service"] == "authorizer"
    assert line["correlation_id"] == "req-authorizer"
    assert "connections" not in line


def test_metrics_count_allowed_and_denied_requests(authorizer, admin, lambda_context, capsys) -> None:
    seed_example_token(admin, {"production"})
    decide(authorizer, event_file(VALID_REQUEST), lambda_context)
    decide(authorizer, event_file(WRONG_REQUEST), lambda_context)
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    names = [m["Name"] for blob in blobs for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
    assert {"Authorized", "Denied"} <= set(names)


# ---------------------------------------------------------------------- least privilege and last-used
def test_the_authorizer_may_only_read_the_tokens_table(stack) -> None:
    props = stack.resources["AuthorizerFunction"]["Properties"]
    assert props["Policies"] == [{"DynamoDBReadPolicy": {"TableName": {"Ref": "TokensTable"}}}]
    assert stack.function("AuthorizerFunction").environment["TOKENS_TABLE"] == stack.physical_name("TokensTable")


def test_the_authorizer_writes_nothing_by_default(authorizer, admin, lambda_context) -> None:
    seed_example_token(admin, {"production"})
    decide(authorizer, event_file(VALID_REQUEST), lambda_context)
    assert admin.tokens.get(EXAMPLE_TOKEN_ID).last_used_at is None  # type: ignore[union-attr]


def test_last_used_is_recorded_at_most_once_per_interval_when_switched_on(
    stack, monkeypatch, admin, lambda_context
) -> None:
    # Given the authorizer with TOKEN_LAST_USED_WRITES=true (it then needs UpdateItem on the table)
    app = load_handler(stack, "AuthorizerFunction", monkeypatch, TOKEN_LAST_USED_WRITES="true")
    seed_example_token(admin, {"production"})
    # When the token is used, its last-used time is written
    before = utc_now().replace(microsecond=0)
    assert decide(app, event_file(VALID_REQUEST), lambda_context)["isAuthorized"] is True
    first = admin.tokens.get(EXAMPLE_TOKEN_ID).last_used_at  # type: ignore[union-attr]
    assert first is not None and first >= before
    # And a use within the interval does not write again, even when the stored value is older than now
    table, ddb = admin.tokens.table, admin.tokens.dynamodb
    ddb.update_item(
        TableName=table,
        Key={"tokenId": {"S": EXAMPLE_TOKEN_ID}},
        UpdateExpression="SET lastUsedAt = :t",
        ExpressionAttributeValues={":t": {"S": "2000-01-01T00:00:00Z"}},
    )
    app.authorizer().last_used_interval = timedelta(days=365 * 100)
    decide(app, event_file(VALID_REQUEST), lambda_context)
    assert admin.tokens.get(EXAMPLE_TOKEN_ID).last_used_at == parse_time("2000-01-01T00:00:00Z")  # type: ignore[union-attr]


# ---------------------------------------------------------------------- with ingest
def openlineage_event(namespace: str) -> dict[str, Any]:
    event = json.loads(event_file("ingest-start.json")["body"])
    event["job"]["namespace"] = namespace
    return event


def test_a_token_scoped_to_another_connection_gets_403_from_ingest(
    authorizer, admin, stack, monkeypatch, aws, lambda_context
) -> None:
    # Given a token for "spark-prod", allowed by the authorizer
    seed_example_token(admin, {"spark-prod"})
    answer = decide(authorizer, event_file(VALID_REQUEST), lambda_context)
    assert answer["isAuthorized"] is True
    # When it sends an event of namespace "production" through ingest
    ingest = load_handler(stack, "IngestFunction", monkeypatch)
    response = ingest.handler(ingest_request(openlineage_event("production"), answer["context"]), lambda_context)
    # Then ingest answers 403 naming the namespace, and nothing is stored
    assert response["statusCode"] == 403
    body = json.loads(response["body"])
    assert "'production'" in body["message"]
    assert "not writable with this token" in body["message"]
    events_table = stack.table_env()["EventsTableName"]
    assert [i for i in table_items(aws, events_table) if not is_quarantine_item(i)] == []
    assert [i["reason"] for i in quarantined(aws, events_table)] == ["forbidden"]
    # While an event of its own namespace is accepted
    response = ingest.handler(ingest_request(openlineage_event("spark-prod"), answer["context"]), lambda_context)
    assert response["statusCode"] == 200
