"""The whole pipeline on one moto account: ingest -> Events table -> stream -> FilterCriteria -> merge."""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

import boto3
from botocore.config import Config
from lineage_intake.config import IngestSettings
from lineage_intake.principal import Principal
from lineage_intake.service.ingest import IngestService, Outcome
from lineage_intake.service.merge import Batch, MergeOutcome, MergeService
from lineage_intake.store.dynamo import from_dynamodb, paginate
from lineage_intake.store.events import EventsStore
from lineage_intake.store.lineage import LineageStore
from lineage_intake_tools.local.poller import matches_any
from lineage_intake_tools.local.template import ROOT, Stack


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_stream", ROOT / "events" / "generate_stream.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = _generator()


#: Markers that name the merge that last *changed* a shared record (which depends on arrival order).
SHARED_VERSION_MARKERS = ("staticVersion", "lineageVersion", "definedVersion", "schemaVersion")


class RecordingGrace:
    """The START grace queue as a list: what the merge sent, for the test to deliver when it wants."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def send(self, namespace: str, job: str, run_id: str, /) -> None:
        self.sent.append((namespace, job, run_id))


class Pipeline:
    """Ingest -> Events table -> stream -> FilterCriteria -> merge, on one moto account."""

    def __init__(self, session: boto3.Session, stack: Stack) -> None:
        self.session = session
        self.stack = stack
        env = stack.function("MergeFunction").environment
        self.events_table, self.lineage_table = env["EVENTS_TABLE"], env["LINEAGE_TABLE"]
        self.dynamodb = session.client("dynamodb")
        self.events = EventsStore(self.dynamodb, self.events_table, env["BODY_BUCKET"], lambda: session.client("s3"))
        self.lineage = LineageStore(self.dynamodb, self.lineage_table, sleep=lambda _s: None)
        self.outcomes: list[MergeOutcome] = []
        self.grace = RecordingGrace()
        self.service = MergeService(self.events, self.lineage, self.outcomes.append, self.grace)
        ingest_env = stack.function("IngestFunction").environment
        self.ingest = IngestService(self.events, IngestSettings.from_env(ingest_env), lambda _o: None)
        self.source = stack.stream_source("MergeFunction")
        self._seen: set[str] = set()
        self._streams = session.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"))
        self.stream_arn = self.dynamodb.describe_table(TableName=self.events_table)["Table"]["LatestStreamArn"]

    # ------------------------------------------------------------------ events in
    def store(self, event: Mapping[str, Any], also: Iterable[str] = ()) -> Outcome:
        """Store one event as a token of its job namespace (and of the ``also`` connections) would."""
        job = event.get("job")
        namespace = job["namespace"] if isinstance(job, Mapping) else "datasets"
        principal = Principal("tok_test", frozenset({namespace, *also}))
        outcome = self.ingest.store_event(copy.deepcopy(dict(event)), principal)
        assert outcome.status in ("accepted", "duplicate"), outcome
        return outcome

    def new_records(self) -> list[dict[str, Any]]:
        """The stream records written since the last call, in stream order, as Lambda delivers them."""
        out = []
        description = self._streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        for shard in description["Shards"]:
            iterator = self._streams.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            for record in self._streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]:
                number = record["dynamodb"]["SequenceNumber"]
                if number not in self._seen:
                    self._seen.add(number)
                    out.append(GENERATOR.lambda_record(record, self.stream_arn))
        return out

    def filtered(self, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records the event source mapping hands to the function (any filter of FilterCriteria matches)."""
        return [r for r in records if matches_any(r, self.source["filters"])]

    def send(self, *events: Mapping[str, Any], also: Iterable[str] = ()) -> list[MergeOutcome]:
        """Store the events, then deliver their stream records to the domain as one batch."""
        for event in events:
            self.store(event, also)
        return self.deliver(self.filtered(self.new_records()))

    def deliver(self, records: list[dict[str, Any]]) -> list[MergeOutcome]:
        before = len(self.outcomes)
        batch = Batch()
        for record in records:
            image = from_dynamodb(lambda_image(record))
            self.service.handle(image, record["eventName"], batch)
        return self.outcomes[before:]

    def expire_grace(self) -> list[MergeOutcome]:
        """Deliver every START grace message sent so far, as StartGraceFunction would after StartGraceSeconds."""
        before = len(self.outcomes)
        sent, self.grace.sent = self.grace.sent, []
        for namespace, job, run_id in sent:
            body = json.dumps({"namespace": namespace, "job": job, "runId": run_id})
            self.service.handle_grace(body)
        return self.outcomes[before:]

    # ------------------------------------------------------------------ lineage out
    def snapshot(self, versions: bool = True) -> dict[tuple[str, str], dict[str, Any]]:
        """Every Lineage-table item without its merge time: what must not depend on arrival order.

        ``versions=False`` also leaves out the version markers of shared records (job, dataset, child link):
        they name the merge that last *changed* the record, and a re-merge that changes nothing there does
        not write it. The run item's ``mergeVersion`` and every content hash are always kept."""
        items: dict[tuple[str, str], dict[str, Any]] = {}
        for raw in paginate(self.dynamodb, "scan", TableName=self.lineage_table):
            item = from_dynamodb(raw)
            if item.get("type") == "checkpoint":
                continue  # a cache of the fold, kept while a run is open; what it holds depends on batching
            item.pop("mergedAt", None)
            if not versions:
                for name in SHARED_VERSION_MARKERS:
                    item.pop(name, None)
            items[(item["pk"], item["sk"])] = item
        return items


def fresh_pipeline(session: boto3.Session, prefix: str) -> Pipeline:
    """The Events and Lineage tables and the body bucket of template.yaml under a new stack ``prefix``, in the
    session's moto account: several pipelines side by side, each on tables of its own."""
    stack = Stack.from_template(prefix=prefix)
    ddb = session.client("dynamodb")
    for logical_id in ("EventsTable", "LineageTable"):
        ddb.create_table(**stack.table_definition(logical_id))
    session.client("s3").create_bucket(Bucket=stack.physical_name("BodyBucket"))
    return Pipeline(session, stack)


def lambda_image(record: Mapping[str, Any]) -> dict[str, Any]:
    """A Lambda-format NewImage back to the client's format (binary attributes decoded)."""

    def value(attr: Mapping[str, Any]) -> dict[str, Any]:
        ((kind, inner),) = attr.items()
        if kind == "B":
            return {"B": base64.b64decode(inner)}
        if kind == "M":
            return {"M": {k: value(v) for k, v in inner.items()}}
        if kind == "L":
            return {"L": [value(v) for v in inner]}
        return {kind: inner}

    return {k: value(v) for k, v in record["dynamodb"].get("NewImage", {}).items()}
