"""Helpers for the authorizer and CLI tests: the authorizer loaded as SAM runs it, requests, seeded tokens.

The ``events/authorizer-*.json`` requests carry a fixed, fake token (``EXAMPLE_TOKEN``). A fresh table does not
know it, so ``seed_example_token`` stores a record for it, built from the public hashing rule. This is a
test-only path: production code (``Admin.create_token``) has no way to choose a secret; it always draws one
from the CSPRNG.
"""

from __future__ import annotations

import copy
import json
import logging
import sys
from datetime import datetime
from types import ModuleType
from typing import Any

import boto3
import pytest
from lineage_intake.service.admin import Admin
from lineage_intake.store.auth import ConnectionStore, TokenStore
from lineage_intake.tokens import TokenRecord, hash_secret, parse_authorization_header, utc_now
from lineage_intake_tools.local.template import Stack

from tests.helpers.aws import load_handler
from tests.helpers.corpus import event_file

VALID_REQUEST = "authorizer-valid-token.json"
WRONG_REQUEST = "authorizer-wrong-token.json"
MISSING_REQUEST = "authorizer-missing-header.json"

EXAMPLE_TOKEN = event_file(VALID_REQUEST)["headers"]["authorization"].removeprefix("Bearer ")
_EXAMPLE = parse_authorization_header(f"Bearer {EXAMPLE_TOKEN}")
EXAMPLE_TOKEN_ID, EXAMPLE_SECRET = _EXAMPLE.token_id, _EXAMPLE.secret


def admin_for(stack: Stack, session: boto3.Session) -> Admin:
    ddb = session.client("dynamodb", region_name=stack.region)
    env = stack.table_env()
    return Admin(
        connections=ConnectionStore(ddb, env["ConnectionsTableName"]),
        tokens=TokenStore(ddb, env["TokensTableName"]),
    )


def load_authorizer(stack: Stack, monkeypatch: pytest.MonkeyPatch, **env: str) -> ModuleType:
    """A fresh cold start of functions/authorizer/app.py with the template's environment.

    Powertools reuses the stream handler of the first ``Logger`` of a service, which may hold the stdout of an
    earlier test; point it at this test's stdout so that ``capsys`` sees every line the function prints.
    """
    app = load_handler(stack, "AuthorizerFunction", monkeypatch, **env)
    handler = app.logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.stream = sys.stdout  # not setStream(): it flushes the old stream, which may be closed
    return app


def seed_token(
    admin: Admin,
    token_id: str,
    secret: str,
    connections: set[str],
    *,
    expires_at: datetime | None = None,
    revoked: bool = False,
    create_connections: bool = True,
) -> TokenRecord:
    """Store a token whose secret the test chose (test-only; see the module docstring)."""
    if create_connections:
        for name in connections - {c.name for c in admin.list_connections()}:
            admin.create_connection(name)
    now = utc_now()
    record = TokenRecord(
        token_id=token_id,
        name="seeded by a test",
        secret_hash=hash_secret(token_id, secret),
        connections=frozenset(connections),
        created_at=now,
        expires_at=expires_at,
        revoked=revoked,
        revoked_at=now if revoked else None,
    )
    admin.tokens.put_new(record)
    return record


def seed_example_token(admin: Admin, connections: set[str], **kwargs: Any) -> TokenRecord:
    return seed_token(admin, EXAMPLE_TOKEN_ID, EXAMPLE_SECRET, connections, **kwargs)


def authorizer_request(authorization: str | None) -> dict[str, Any]:
    """events/authorizer-valid-token.json with another Authorization header (``None``: no header)."""
    request = copy.deepcopy(event_file(VALID_REQUEST))
    request["headers"].pop("authorization", None)
    request["identitySource"] = []
    if authorization is not None:
        request["headers"]["authorization"] = authorization
        request["identitySource"] = [authorization]
    return request


def ingest_request(event: dict[str, Any], authorizer_context: dict[str, Any]) -> dict[str, Any]:
    """An HTTP API request to POST /api/v1/lineage as API Gateway passes it on after the authorizer allowed it."""
    request = copy.deepcopy(event_file("ingest-start.json"))
    request["body"], request["isBase64Encoded"] = json.dumps(event), False
    request["requestContext"]["authorizer"] = {"lambda": authorizer_context}
    return request


def structured_lines(app: ModuleType, caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The authorizer's log records, rendered by its own Powertools JSON formatter."""
    formatter = app.logger.registered_formatter
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == "authorizer"]


def everything_logged(app: ModuleType, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> str:
    """Every byte the function printed or logged: stdout, stderr, captured records and their rendering."""
    out = capsys.readouterr()
    return "\n".join([out.out, out.err, caplog.text, json.dumps(structured_lines(app, caplog))])
