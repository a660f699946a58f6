"""Merge function: the Events table stream in, lineage records out; and the START grace function.

``handler`` serves the Events table stream (MergeFunction); ``grace_handler`` serves StartGraceQueue
(StartGraceFunction): a run whose terminal event came without START, after StartGraceSeconds (docs/merge.md).
Both share the settings, the Powertools utilities and the service of this module.

Thin by design: a Powertools batch processor walks the stream batch and reports the records that failed
(ReportBatchItemFailures); it stops at the first failure and before the timeout, reporting the rest as deferred
(``lineage_intake.stream_batch``, docs/merge.md#failures-what-holds-a-lane-and-for-how-long). The domain
(``lineage_intake.service.merge``) does the work, one call per record, and hands back an outcome that
``report`` turns into one log line and its metrics.
"""

from functools import cache, partial
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from lineage_intake.config import MergeSettings
from lineage_intake.logs import function_logger
from lineage_intake.service.merge import Batch, MergeOutcome, MergeService
from lineage_intake.stream_batch import Deferral, GuardedBatchProcessor

settings = MergeSettings.from_env()
logger = function_logger()
metrics = Metrics()
tracer = Tracer()


def report_deferred(deferral: Deferral) -> None:
    """One log line and one metric per invocation that deferred records (not one per record)."""
    logger.warning("merge deferred", extra=deferral.log_fields())
    metrics.add_metric(name="MergeRecordsDeferred", unit=MetricUnit.Count, value=deferral.count)


#: Stops at the first failure and before the timeout (``lineage_intake.stream_batch``). Its parser model turns each
#: record's attribute values into plain values; the service parses NewImage itself, so that a malformed image is
#: reported as a failed merge with the field it lacks.
processor = GuardedBatchProcessor(reserve_ms=settings.time_reserve_seconds * 1000, on_deferred=report_deferred)
grace_processor = BatchProcessor(event_type=EventType.SQS)

#: Outcome -> metric counted once per merge (coalesced, ignored and pending records count nothing).
METRIC = {
    "merged": "RunsMerged",
    "streaming": "RunsMerged",
    "awaiting_start": "RunsAwaitingStart",
    "failed": "MergeErrors",
    "static": "StaticLineageMerged",
    "superseded": "MergesSuperseded",
}


def report(outcome: MergeOutcome) -> None:
    """One structured log line and the metrics of one merge."""
    fields = outcome.log_fields()
    if outcome.status == "failed":
        logger.error(f"merge {outcome.status}", extra=fields, exc_info=outcome.error)
    elif outcome.status == "awaiting_start":
        logger.warning(f"merge {outcome.status}", extra=fields)
    else:
        logger.info(f"merge {outcome.status}", extra=fields)
    name = METRIC.get(outcome.status)
    if name:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    if outcome.start_missing and outcome.status == "merged":
        metrics.add_metric(name="RunsMergedWithoutStart", unit=MetricUnit.Count, value=1)
    if outcome.lag_seconds is not None:
        metrics.add_metric(name="MergeLag", unit=MetricUnit.Seconds, value=outcome.lag_seconds)


@cache
def service() -> MergeService:
    """Clients are created on first use, once per container, and passed into the domain."""
    import boto3
    from botocore.config import Config
    from lineage_intake.service.merge import SqsGraceQueue
    from lineage_intake.store.events import EventsStore
    from lineage_intake.store.lineage import LineageStore

    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=2, read_timeout=10)
    dynamodb = boto3.client("dynamodb", config=config)
    s3 = cache(lambda: boto3.client("s3", config=config))
    events = EventsStore(dynamodb, settings.events_table, settings.body_bucket, s3)
    lineage = LineageStore(dynamodb, settings.lineage_table, time_index=settings.time_index)
    grace = SqsGraceQueue(boto3.client("sqs", config=config), settings.start_grace_queue_url)
    return MergeService(events, lineage, report, grace)


@tracer.capture_method
def record_handler(record: DynamoDBStreamRecordModel, batch: Batch) -> str:
    image = record.dynamodb.NewImage
    return service().handle(image if isinstance(image, dict) else {}, record.eventName, batch).status


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    batch = Batch()  # this invocation's batch: nothing carries over to the next one
    handle = partial(record_handler, batch=batch)
    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)


@tracer.capture_method
def grace_record_handler(record: SQSRecord) -> str:
    return service().handle_grace(record.body).status


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def grace_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=grace_record_handler, processor=grace_processor, context=context
    )
