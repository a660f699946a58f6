"""START grace function: merges a run whose START has not come within StartGraceSeconds (docs/merge.md).

The merge sends a run to ``StartGraceQueue`` when its terminal event comes without START; the queue's
DelaySeconds is the grace period, so nothing runs (or costs) while a run waits. Thin like ``app``: Powertools'
batch processor, one service call per message; the service is ``app``'s, created once per container.
"""

from typing import Any

from app import logger, metrics, service, tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method
def record_handler(record: SQSRecord) -> str:
    return service().handle_grace(record.body).status


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
