"""The operations side of template.yaml: what cfn-lint cannot check about access logs, alarms and the dashboard."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from lineage_intake_tools.local.template import load_template

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]


def _of_type(kind: str) -> dict[str, Any]:
    return {name: r for name, r in RESOURCES.items() if r["Type"] == kind}


def test_the_access_log_is_one_json_object_with_the_fields_operators_need() -> None:
    # Given the HTTP API's access log format
    settings = RESOURCES["HttpApi"]["Properties"]["AccessLogSettings"]
    # When API Gateway fills in every $context variable
    line = re.sub(r"\$context\.[\w.]+", "x", settings["Format"])
    fields = json.loads(line)
    # Then it is JSON naming the request, route, status, errors, latency, caller and token
    assert {
        "requestId",
        "routeKey",
        "status",
        "authorizerError",
        "integrationError",
        "latencyMs",
        "sourceIp",
        "userAgent",
        "responseLength",
        "tokenId",
    } <= set(fields)
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]}


def test_every_function_logs_json_without_lambdas_start_end_report_lines_at_the_log_level_parameter() -> None:
    # Given the template's Globals and its functions, as SAM merges their LoggingConfig
    defaults = TEMPLATE["Globals"]["Function"]["LoggingConfig"]
    levels = TEMPLATE["Mappings"]["LambdaLogLevel"]
    for name, function in _of_type("AWS::Serverless::Function").items():
        config = {**defaults, **function["Properties"].get("LoggingConfig", {})}
        # Then each one logs JSON lines to its own group, Lambda's own lines only at WARN (no START/END/REPORT,
        # about 350 bytes an invocation)
        assert (config["LogFormat"], config["SystemLogLevel"]) == ("JSON", "WARN"), name
        assert "LogGroup" in config, name
        # And its application level follows LogLevel, in Lambda's names for each allowed value
        assert config["ApplicationLogLevel"] == {"Fn::FindInMap": ["LambdaLogLevel", {"Ref": "LogLevel"}, "Level"]}
    allowed = TEMPLATE["Parameters"]["LogLevel"]["AllowedValues"]
    assert {value: levels[value]["Level"] for value in allowed} == {
        "DEBUG": "DEBUG",
        "INFO": "INFO",
        "WARNING": "WARN",
        "ERROR": "ERROR",
    }


def test_every_log_group_has_a_retention() -> None:
    # Given every log group of the template / Then each one expires its lines
    groups = _of_type("AWS::Logs::LogGroup")
    assert "HttpApiAccessLogGroup" in groups
    assert all(g["Properties"].get("RetentionInDays") == {"Ref": "LogRetentionDays"} for g in groups.values())


@pytest.mark.parametrize("name", sorted(_of_type("AWS::CloudWatch::Alarm")))
def test_every_alarm_notifies_the_topic_when_an_email_is_given(name: str) -> None:
    # Given an alarm / Then its actions are the optional topic, and missing data never raises it
    props = RESOURCES[name]["Properties"]
    assert props["AlarmActions"] == {"Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]}
    assert props["TreatMissingData"] == "notBreaching"
    assert props["AlarmDescription"]


def test_the_alarms_cover_what_can_fail_silently() -> None:
    # Given the alarms / Then the list is there, the 429 alarm included
    assert {
        "Api5xxRateAlarm",
        "RejectionRateAlarm",
        "AuthorizerErrorsAlarm",
        "DynamoDbThrottlesAlarm",
        "MergeErrorsAlarm",
        "ApiThrottledAlarm",
        "MergeDeadLetterAlarm",
        "MergeIteratorAgeAlarm",
        "IngestErrorsAlarm",
    } <= set(_of_type("AWS::CloudWatch::Alarm"))
    assert RESOURCES["RejectionRateAlarm"]["Properties"]["Threshold"] == {"Ref": "RejectionRateAlarmThreshold"}


def test_the_dashboard_body_is_json_once_its_references_are_substituted() -> None:
    # Given the dashboard body (a !Sub string)
    body = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    references = set(re.findall(r"\$\{([\w:.]+)\}", body))
    # When CloudFormation substitutes its references
    dashboard = json.loads(re.sub(r"\$\{[\w:.]+\}", "value", body))
    # Then it is valid JSON, refers only to the template's own resources, and shows the widgets
    assert {r.split(".")[0] for r in references} - {"AWS::Region"} <= set(RESOURCES)
    titles = " / ".join(w["properties"]["title"] for w in dashboard["widgets"])
    for topic in ["rejected", "5xx", "latency", "Merge lag", "awaiting", "DLQ", "iterator", "DynamoDB", "quarantined"]:
        assert topic.lower() in titles.lower(), topic


def test_api_throttling_comes_from_parameters_with_high_defaults() -> None:
    # Given the route settings and the parameters
    route = RESOURCES["HttpApi"]["Properties"]["DefaultRouteSettings"]
    params = TEMPLATE["Parameters"]
    # Then the limits are parameters, and their defaults leave room for real producers
    assert route == {
        "ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"},
        "ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"},
    }
    assert params["ThrottlingRateLimit"]["Default"] >= 5000
    assert params["ThrottlingBurstLimit"]["Default"] >= 5000
    for name in ["RejectedRetentionDays", "QuarantineDailyCapPerToken", "RejectionRateAlarmThreshold"]:
        assert params[name]["Default"] in params[name]["AllowedValues"], name
