"""Which endpoint a client of the local stack uses: botocore's per-service variable first, then AWS_ENDPOINT_URL."""

from __future__ import annotations

import os

import boto3
import pytest
from lineage_intake_tools.envfile import endpoint_url, endpoint_variable

LOCAL = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
    "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:5001",
    "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": "http://127.0.0.1:5001",
}


def test_the_variable_names_are_botocore_s_own_for_every_service_the_stack_serves() -> None:
    # When the names are derived from client names
    names = {service: endpoint_variable(service) for service in ("dynamodb", "dynamodbstreams", "s3", "sqs")}
    # Then the stream client's is named after its service id ("DynamoDB Streams"), as botocore reads it
    assert names == {
        "dynamodb": "AWS_ENDPOINT_URL_DYNAMODB",
        "dynamodbstreams": "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
        "s3": "AWS_ENDPOINT_URL_S3",
        "sqs": "AWS_ENDPOINT_URL_SQS",
    }


@pytest.mark.parametrize("service", ["dynamodb", "dynamodbstreams", "s3", "sqs"])
def test_a_client_given_the_picked_endpoint_goes_where_boto3_alone_would_go(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the local stack's endpoint variables in the environment
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")]:
        monkeypatch.delenv(name)
    for name, value in LOCAL.items():
        monkeypatch.setenv(name, value)
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    # When one client takes its endpoint from boto3's own lookup and another from endpoint_url()
    implicit = session.client(service)
    explicit = session.client(service, endpoint_url=endpoint_url(LOCAL, service))
    # Then both go to the same place: the DynamoDB endpoint for DynamoDB and its streams, moto's server otherwise
    assert explicit.meta.endpoint_url == implicit.meta.endpoint_url
    expected = "http://127.0.0.1:5001" if service.startswith("dynamodb") else "http://127.0.0.1:5000"
    assert explicit.meta.endpoint_url == expected


def test_without_a_per_service_variable_the_general_endpoint_or_none_is_used() -> None:
    # Then AWS_ENDPOINT_URL is the fallback, and no variable at all means boto3's own default (None)
    assert endpoint_url({"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}, "dynamodb") == "http://127.0.0.1:5000"
    assert endpoint_url({}, "dynamodb") is None
