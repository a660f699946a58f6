"""The ``lineage-intake`` CLI end to end on moto: commands, output, errors, table discovery, and a token's life.

Commands run through ``main([...])`` in-process (the console script calls the same function), with the table
names in the ``LINEAGE_*`` variables that the local stack writes, or found through ``--stack``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import lineage_intake_tools.cli as cli
import pytest
from lineage_intake.principal import Principal
from lineage_intake.service.admin import Admin
from lineage_intake.tokens import parse_authorization_header
from lineage_intake_tools.local.template import ROOT, Stack

from tests.helpers.auth import admin_for, authorizer_request, ingest_request, load_authorizer
from tests.helpers.aws import load_handler
from tests.helpers.corpus import event_file
from tests.helpers.eventlog import is_quarantine_item, quarantined, table_items


def stack_variables(stack: Stack) -> dict[str, str]:
    """The variables the local stack writes to .local/openlineage.env: LINEAGE_TOKENS_TABLE=..."""
    outputs = stack.table_env()
    return {variable: outputs[output] for output, variable in cli.RESOURCES.values()}


@pytest.fixture
def env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    variables = stack_variables(stack)
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    return variables


@pytest.fixture
def admin(stack: Stack, aws: boto3.Session) -> Admin:
    return admin_for(stack, aws)


class Run:
    """One CLI invocation: exit code, stdout, stderr."""

    def __init__(self, capsys: pytest.CaptureFixture[str], *argv: str) -> None:
        capsys.readouterr()
        self.code = cli.main(list(argv))
        captured = capsys.readouterr()
        self.out, self.err = captured.out, captured.err

    @property
    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def last_line(self) -> str:
        return self.out.rstrip("\n").splitlines()[-1]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], env: dict[str, str]) -> Any:
    return lambda *argv: Run(capsys, *argv)


# ---------------------------------------------------------------------- connections
def test_an_operator_creates_lists_and_deletes_a_connection(run) -> None:
    created = run("connections", "create", "production", "--description", "Prod Spark", "--admin", "data-eng", "--json")
    assert created.code == 0, created.err
    assert created.json["name"] == "production"
    assert created.json["admins"] == ["data-eng"]
    assert created.json["description"] == "Prod Spark"

    listed = run("connections", "list")
    assert listed.code == 0
    assert listed.out.splitlines()[0].split() == ["NAME", "CREATED", "ADMINS", "DESCRIPTION"]
    assert "production" in listed.out and "data-eng" in listed.out

    deleted = run("connections", "delete", "production")
    assert deleted.code == 0
    assert "Deleted connection 'production'" in deleted.out
    assert run("connections", "list", "--json").json == []


def test_a_connection_records_its_name_description_admins_and_creation_time(run, admin) -> None:
    run("connections", "create", "spark-prod", "--admin", "alice", "--admin", "team-data", "--admin", "alice")
    (conn,) = admin.list_connections()
    assert (conn.name, conn.description, conn.admins) == ("spark-prod", None, ("alice", "team-data"))
    assert conn.created_at.tzinfo is not None


def test_creating_a_connection_that_exists_fails_and_says_so(run) -> None:
    run("connections", "create", "production")
    again = run("connections", "create", "production")
    assert again.code == 1
    assert again.err == "lineage-intake: error: connection 'production' already exists\n"
    assert again.out == ""


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "must not be empty"), (" production", "whitespace"), ("prod\nuction", "control characters")],
)
def test_a_bad_connection_name_is_refused(run, name, message) -> None:
    result = run("connections", "create", name)
    assert result.code == 1
    assert message in result.err


def test_deleting_an_unknown_connection_fails(run) -> None:
    result = run("connections", "delete", "nope", "--json")
    assert result.code == 1
    assert json.loads(result.err) == {"error": "not_found", "message": "connection 'nope' does not exist"}


def test_a_connection_used_by_an_active_token_is_not_deleted(run, admin) -> None:
    # Given a token for production and staging
    run("connections", "create", "production")
    run("connections", "create", "staging")
    token_id = run("tokens", "create", "--connection", "production", "--connection", "staging", "--json").json[
        "tokenId"
    ]
    # When the operator deletes production, it is refused and the token named
    refused = run("connections", "delete", "production")
    assert refused.code == 1
    assert token_id in refused.err and "--detach-tokens" in refused.err
    assert [c.name for c in admin.list_connections()] == ["production", "staging"]
    # And with --detach-tokens, production leaves the token's scope, staging stays
    deleted = run("connections", "delete", "production", "--detach-tokens", "--json")
    assert deleted.code == 0
    assert deleted.json["detachedTokens"] == [token_id]
    assert admin.tokens.get(token_id).connections == frozenset({"staging"})


def test_a_connection_used_only_by_revoked_tokens_is_deleted(run) -> None:
    run("connections", "create", "production")
    token_id = run("tokens", "create", "--connection", "production", "--json").json["tokenId"]
    run("tokens", "revoke", token_id)
    assert run("connections", "delete", "production").code == 0


# ---------------------------------------------------------------------- tokens
def test_tokens_create_prints_the_token_alone_on_the_last_line(run, admin) -> None:
    run("connections", "create", "production")
    created = run("tokens", "create", "--connection", "production", "--name", "airflow", "--expires-in-days", "30")
    assert created.code == 0, created.err
    token = created.last_line
    parts = parse_authorization_header(f"Bearer {token}")
    assert parts.token_id in created.out.splitlines()[0]
    # Only the hash is stored, with the human name, scope, times and flags
    record = admin.tokens.get(parts.token_id)
    assert record is not None
    assert (record.name, record.connections, record.revoked) == ("airflow", frozenset({"production"}), False)
    assert record.expires_at is not None and (record.expires_at - record.created_at).days == 30
    stored = json.dumps(admin.tokens.dynamodb.scan(TableName=admin.tokens.table)["Items"])
    assert token not in stored and parts.secret not in stored


def test_tokens_create_with_json_gives_the_token_once_in_a_field(run) -> None:
    run("connections", "create", "production")
    created = run("tokens", "create", "--connection", "production", "--json")
    data = created.json
    assert data["token"].startswith(f"li_{data['tokenId']}_")
    assert data["connections"] == ["production"]
    assert data["expiresAt"] is None and data["status"] == "active"


def test_a_token_for_an_unknown_connection_is_refused(run, admin) -> None:
    run("connections", "create", "production")
    result = run("tokens", "create", "--connection", "production", "--connection", "typo")
    assert result.code == 1
    assert "'typo'" in result.err and "connections create" in result.err
    assert admin.list_tokens() == []


@pytest.mark.parametrize("days", ["0", "-1", "100000"])
def test_an_out_of_range_expiry_is_refused(run, days) -> None:
    run("connections", "create", "production")
    result = run("tokens", "create", "--connection", "production", "--expires-in-days", days)
    assert result.code == 1
    assert "--expires-in-days" in result.err


def test_tokens_create_needs_a_connection_for_the_default_write_scope(run) -> None:
    result = run("tokens", "create")
    assert result.code == 1
    assert "write scope needs at least one --connection" in result.err


def test_tokens_create_defaults_to_write_only_so_existing_scripts_keep_their_meaning(run, admin) -> None:
    # Given a connection; When a token is created without --scope
    run("connections", "create", "production")
    data = run("tokens", "create", "--connection", "production", "--json").json
    # Then it is write-only, on the record and in the listing
    assert data["scopes"] == ["write"]
    assert admin.tokens.get(data["tokenId"]).scopes == frozenset({"write"})


def test_a_read_only_token_needs_no_connection_and_a_read_write_token_gets_both(run, admin) -> None:
    run("connections", "create", "production")
    # When a read-only token is created without any connection
    reader = run("tokens", "create", "--scope", "read", "--name", "notebooks", "--json")
    # And a read+write token for a connection
    both = run("tokens", "create", "--scope", "read", "--scope", "write", "--connection", "production", "--json")
    # Then each record holds exactly its scopes
    assert reader.code == 0, reader.err
    assert admin.tokens.get(reader.json["tokenId"]).scopes == frozenset({"read"})
    assert admin.tokens.get(reader.json["tokenId"]).connections == frozenset()
    assert admin.tokens.get(both.json["tokenId"]).scopes == frozenset({"read", "write"})
    listing = run("tokens", "list")
    assert "SCOPES" in listing.out and "read, write" in listing.out


def test_an_unknown_scope_is_refused_by_the_command_line(run) -> None:
    result = run("tokens", "create", "--scope", "admin", "--connection", "production")
    assert result.code == 2
    assert "--scope" in result.err


def test_tokens_list_never_shows_a_secret_or_a_hash(run, admin) -> None:
    run("connections", "create", "production")
    token = run("tokens", "create", "--connection", "production", "--name", "dbt").last_line
    parts = parse_authorization_header(f"Bearer {token}")
    secret_hash = admin.tokens.get(parts.token_id).secret_hash
    for listing in (run("tokens", "list"), run("tokens", "list", "--json")):
        assert listing.code == 0
        assert parts.token_id in listing.out
        for hidden in (token, parts.secret, secret_hash):
            assert hidden not in listing.out + listing.err
    (shown,) = run("tokens", "list", "--json").json
    public = {"tokenId", "name", "connections", "scopes", "status", "createdAt", "expiresAt", "revoked", "revokedAt"}
    assert set(shown) == public | {"lastUsedAt"}


def test_tokens_list_filters_by_connection(run) -> None:
    run("connections", "create", "a")
    run("connections", "create", "b")
    run("tokens", "create", "--connection", "a")
    only_b = run("tokens", "create", "--connection", "b", "--json").json["tokenId"]
    assert [t["tokenId"] for t in run("tokens", "list", "--connection", "b", "--json").json] == [only_b]


def test_revoking_a_token_is_recorded_and_idempotent(run) -> None:
    run("connections", "create", "production")
    token_id = run("tokens", "create", "--connection", "production", "--json").json["tokenId"]
    first = run("tokens", "revoke", token_id, "--json")
    assert first.code == 0
    assert first.json["revoked"] is True and first.json["status"] == "revoked"
    again = run("tokens", "revoke", token_id, "--json")
    assert again.json["revokedAt"] == first.json["revokedAt"]
    (listed,) = run("tokens", "list", "--json").json
    assert listed["status"] == "revoked"


def test_revoking_an_unknown_token_fails(run) -> None:
    result = run("tokens", "revoke", "fedcba9876543210")
    assert result.code == 1
    assert result.err == "lineage-intake: error: token fedcba9876543210 does not exist\n"


def test_revoke_refuses_a_whole_token_without_echoing_it(run) -> None:
    run("connections", "create", "production")
    token = run("tokens", "create", "--connection", "production").last_line
    result = run("tokens", "revoke", token)
    assert result.code == 1
    assert "token id" in result.err
    assert token not in result.out + result.err
    assert run("tokens", "revoke", "not-an-id").code == 1


# ---------------------------------------------------------------------- every command, --json and errors
COMMANDS = [
    ["connections", "create", "json-check"],
    ["connections", "list"],
    ["tokens", "create", "--connection", "production"],
    ["tokens", "list"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(a[:2]) for a in COMMANDS])
def test_every_command_answers_json_with_json_before_or_after_the_command(run, argv) -> None:
    run("connections", "create", "production")
    after = run(*argv, "--json")
    assert after.code == 0, after.err
    json.loads(after.out)
    if argv[1] != "create":
        before = run("--json", *argv)
        assert before.json == after.json


def test_json_errors_are_json_on_stderr(run) -> None:
    result = run("tokens", "revoke", "0000000000000000", "--json")
    assert (result.code, result.out) == (1, "")
    assert json.loads(result.err)["error"] == "not_found"


# ---------------------------------------------------------------------- table discovery
def test_without_a_stack_or_variables_the_error_names_both(capsys, aws, monkeypatch) -> None:
    for _, variable in cli.RESOURCES.values():
        monkeypatch.delenv(variable, raising=False)
    result = Run(capsys, "connections", "list")
    assert result.code == 1
    assert "--stack NAME" in result.err and "LINEAGE_CONNECTIONS_TABLE" in result.err


def test_tables_are_found_from_the_outputs_of_a_cloudformation_stack(capsys, stack, aws, monkeypatch) -> None:
    # Given a deployed stack whose outputs name the tables (moto's CloudFormation, literal outputs)
    for _, variable in cli.RESOURCES.values():
        monkeypatch.delenv(variable, raising=False)
    outputs = {key: {"Value": value} for key, value in stack.table_env().items()}
    template = {"Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}}, "Outputs": outputs}
    aws.client("cloudformation").create_stack(StackName="lineage-prod", TemplateBody=json.dumps(template))
    # When the operator names the stack, the commands work
    assert Run(capsys, "connections", "create", "production", "--stack", "lineage-prod").code == 0
    assert Run(capsys, "--stack", "lineage-prod", "connections", "list", "--json").json[0]["name"] == "production"
    # And an unknown stack is an error that names it
    missing = Run(capsys, "connections", "list", "--stack", "nope")
    assert missing.code == 1
    assert "stack 'nope' not found" in missing.err


def test_a_stack_without_the_output_says_which_is_missing(capsys, aws) -> None:
    template = {"Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}}, "Outputs": {"Other": {"Value": "x"}}}
    aws.client("cloudformation").create_stack(StackName="other", TemplateBody=json.dumps(template))
    result = Run(capsys, "connections", "list", "--stack", "other")
    assert result.code == 1
    assert "stack 'other' has no output ConnectionsTableName" in result.err


def test_an_env_file_written_by_the_local_stack_is_read(capsys, stack, aws, monkeypatch, tmp_path) -> None:
    for _, variable in cli.RESOURCES.values():
        monkeypatch.delenv(variable, raising=False)
    env_file = tmp_path / "openlineage.env"
    lines = ["# written by make run", *(f"export {k}='{v}'" for k, v in stack_variables(stack).items())]
    env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert Run(capsys, "connections", "create", "production", "--env-file", str(env_file)).code == 0
    missing = Run(capsys, "connections", "list", "--env-file", str(tmp_path / "absent.env"))
    assert missing.code == 1 and "absent.env" in missing.err


def test_clients_honour_aws_endpoint_url() -> None:
    args = cli.build_parser().parse_args(["tokens", "list", "--region", "eu-west-1"])
    general = cli.Context(args=args, env={"AWS_ENDPOINT_URL": "http://127.0.0.1:3001"})
    assert general.client("dynamodb").meta.endpoint_url == "http://127.0.0.1:3001"
    assert general.client("dynamodb").meta.region_name == "eu-west-1"
    specific = cli.Context(
        args=args,
        env={"AWS_ENDPOINT_URL": "http://127.0.0.1:3001", "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:4566"},
    )
    assert specific.client("dynamodb").meta.endpoint_url == "http://127.0.0.1:4566"


def test_an_unreachable_endpoint_is_an_error_not_a_traceback(capsys, monkeypatch) -> None:
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("LINEAGE_CONNECTIONS_TABLE", "c")
    monkeypatch.setenv("LINEAGE_TOKENS_TABLE", "t")
    result = Run(capsys, "connections", "list", "--region", "us-east-1")
    assert result.code == cli.EXIT_UNAVAILABLE
    assert result.err.startswith("lineage-intake: error: storage could not be reached")


def test_adding_a_command_group_is_one_function(capsys, env, monkeypatch) -> None:
    def add_examples_parser(sub: Any) -> None:
        group = cli.add_group(sub, "examples", "an example group")

        def show_example(ctx: cli.Context) -> cli.Result:
            return cli.Result({"table": ctx.resources.require("lineage_table")}, [ctx.args.example_id])

        show = cli.add_command(group, "show", show_example, "show an example")
        show.add_argument("example_id")

    monkeypatch.setattr(cli, "COMMAND_GROUPS", [*cli.COMMAND_GROUPS, add_examples_parser])
    result = Run(capsys, "examples", "show", "e1", "--json")
    assert result.json == {"table": env["LINEAGE_LINEAGE_TABLE"]}


def test_the_console_script_is_installed() -> None:
    script = shutil.which("lineage-intake", path=str(Path(ROOT / ".venv" / "bin")))
    if script is None:
        pytest.skip("the project is not installed in .venv (run make install)")
    answer = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert answer.returncode == 0
    assert "connections" in answer.stdout and "tokens" in answer.stdout


# ---------------------------------------------------------------------- a token's life, end to end
def authorize(app: ModuleType, token: str, context: Any) -> dict[str, Any]:
    return app.handler(authorizer_request(f"Bearer {token}"), context)


def lineage_event(namespace: str) -> dict[str, Any]:
    event = json.loads(event_file("ingest-start.json")["body"])
    event["job"]["namespace"] = namespace
    return event


def test_a_token_created_with_the_cli_writes_through_the_authorizer_and_ingest_until_revoked(
    run, stack, aws, monkeypatch, capsys, lambda_context
) -> None:
    authorizer = load_authorizer(stack, monkeypatch)
    ingest = load_handler(stack, "IngestFunction", monkeypatch)
    events_table = stack.table_env()["EventsTableName"]
    # Given a connection and a token created with the CLI
    assert run("connections", "create", "production", "--admin", "data-platform").code == 0
    created = run("tokens", "create", "--connection", "production", "--name", "spark")
    token = created.last_line
    token_id = parse_authorization_header(f"Bearer {token}").token_id

    # When a producer sends it, the authorizer allows it and hands ingest the token's scope
    answer = authorize(authorizer, token, lambda_context)
    assert answer["isAuthorized"] is True
    assert Principal.from_context(answer["context"]) == Principal(token_id, frozenset({"production"}))
    # And ingest stores an event of that namespace
    response = ingest.handler(ingest_request(lineage_event("production"), answer["context"]), lambda_context)
    assert response["statusCode"] == 200, response["body"]
    assert aws.client("dynamodb").scan(TableName=events_table)["Count"] == 1
    # But refuses another namespace with 403, storing no event (the quarantine keeps it, for replay)
    response = ingest.handler(ingest_request(lineage_event("staging"), answer["context"]), lambda_context)
    assert response["statusCode"] == 403
    assert "'staging' is not writable with this token" in json.loads(response["body"])["message"]
    assert len([i for i in table_items(aws, events_table) if not is_quarantine_item(i)]) == 1
    assert [i["namespace"] for i in quarantined(aws, events_table)] == ["staging"]

    # When the operator revokes it with the CLI, the authorizer denies it
    assert run("tokens", "revoke", token_id).code == 0
    assert authorize(authorizer, token, lambda_context) == {"isAuthorized": False}
    (listed,) = run("tokens", "list", "--json").json
    assert listed["status"] == "revoked"
    assert token not in capsys.readouterr().out


def test_a_token_scoped_to_another_connection_gets_403_from_ingest(run, stack, monkeypatch, lambda_context) -> None:
    authorizer = load_authorizer(stack, monkeypatch)
    ingest = load_handler(stack, "IngestFunction", monkeypatch)
    run("connections", "create", "production")
    run("connections", "create", "spark-prod")
    token = run("tokens", "create", "--connection", "spark-prod").last_line
    answer = authorize(authorizer, token, lambda_context)
    assert answer["isAuthorized"] is True
    response = ingest.handler(ingest_request(lineage_event("production"), answer["context"]), lambda_context)
    assert response["statusCode"] == 403
    body = json.loads(response["body"])
    assert body["error"] == "forbidden"
    assert "namespace 'production' is not writable with this token" in body["message"]


def test_a_table_that_does_not_exist_is_an_error_that_says_where_its_name_came_from(run, monkeypatch) -> None:
    monkeypatch.setenv("LINEAGE_CONNECTIONS_TABLE", "no-such-table")
    result = run("connections", "list")
    assert result.code == 1
    assert "ResourceNotFoundException" in result.err
    assert "table names came from the environment" in result.err
    assert "Traceback" not in result.err
