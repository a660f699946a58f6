"""Authorizer function: the HTTP API's Lambda authorizer (payload 2.0, simple responses).

Thin by design: ``lineage_intake.service.authorizer.TokenAuthorizer`` makes the decision (one GetItem, one constant-time
compare); this module turns it into the native simple response, one log line and one metric.

- It fails closed: any exception, here or in the domain, answers ``isAuthorized: false``.
- It never logs the event, the headers, the token or its secret: only the token id, the outcome and a reason.
- The context that ingest reads is built by ``Principal.to_context()`` and nowhere else.
"""

from functools import cache
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerEventV2,
    APIGatewayAuthorizerResponseV2,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from lineage_intake.config import AuthorizerSettings
from lineage_intake.logs import function_logger
from lineage_intake.service.authorizer import TokenAuthorizer
from lineage_intake.store.auth import TokenStore
from lineage_intake.tokens import Decision

settings = AuthorizerSettings.from_env()
logger = function_logger()
metrics = Metrics()
tracer = Tracer()


@cache
def authorizer() -> TokenAuthorizer:
    """The client is created on first use, once per container, with short timeouts (the function has 5 s)."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=1, read_timeout=2)
    return TokenAuthorizer(
        TokenStore(boto3.client("dynamodb", config=config), settings.tokens_table),
        record_last_used=settings.record_last_used,
        warn=lambda message, fields: logger.warning(message, extra=fields),
    )


def _log(decision: Decision) -> None:
    outcome = "allow" if decision.allowed else "deny"
    fields = {"tokenId": decision.token_id, "outcome": outcome, "reason": decision.reason}
    if decision.error:
        fields["error"] = decision.error
    if decision.reason == "error":
        logger.error("authorization failed closed", extra=fields)
    else:
        logger.info("authorization decided", extra=fields)
    metrics.add_metric(name="Authorized" if decision.allowed else "Denied", unit=MetricUnit.Count, value=1)


@event_source(data_class=APIGatewayAuthorizerEventV2)
def _decide(event: APIGatewayAuthorizerEventV2, context: LambdaContext) -> dict[str, Any]:
    decision = authorizer().authorize(event.get("headers"))
    _log(decision)
    if decision.allowed and decision.principal is not None:
        return APIGatewayAuthorizerResponseV2(authorize=True, context=decision.principal.to_context()).asdict()
    return APIGatewayAuthorizerResponseV2(authorize=False).asdict()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        return _decide(event, context)
    except Exception as exc:  # fail closed, whatever went wrong
        fields = {"outcome": "deny", "reason": "error", "error": type(exc).__name__}
        logger.error("authorization failed closed", extra=fields)
        metrics.add_metric(name="Denied", unit=MetricUnit.Count, value=1)
        return APIGatewayAuthorizerResponseV2(authorize=False).asdict()
