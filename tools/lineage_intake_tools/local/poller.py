"""The local stand-in for a Lambda event source mapping on a DynamoDB stream.

It reads the stream through the DynamoDB Streams API (``DescribeStream``, ``GetShardIterator``,
``GetRecords``) of the local endpoint and calls the function with the event Lambda would send, following the
settings of the template's ``DynamoDB`` event (``stack.stream_source()``):

- **Records** are in Lambda's JSON shape: ``eventID``, ``eventName``, ``eventVersion``, ``eventSource``,
  ``awsRegion``, ``eventSourceARN`` and ``dynamodb`` with ``ApproximateCreationDateTime`` in epoch seconds,
  ``Keys``/``NewImage``/``OldImage`` as attribute values (``B`` in base64), ``SequenceNumber``, ``SizeBytes``
  and ``StreamViewType``.
- **FilterCriteria**: each record is matched against the patterns (any pattern may match) before batching,
  as Lambda does; a record that matches none is dropped and never reaches the function. The pattern syntax
  implemented is Lambda's event filtering: nested objects, lists of exact values (strings, numbers, null),
  ``prefix``, ``suffix``, ``equals-ignore-case``, ``anything-but``, ``numeric`` and ``exists``. Any other
  operator is refused when the poller is created, so a template change cannot be silently ignored.
- **Concurrency** (``ParallelizationFactor``): each shard has that many *lanes*, as Lambda has that many
  concurrent batchers per shard. A record goes to the lane of its partition key (a hash of the table's hash
  key: one run's events share it), so the records of one key stay in sequence-number order and are never in
  two invocations at once, while distinct keys are invoked concurrently: at most one invocation per lane, and
  at most ``factor x shards`` bounded by the function's local concurrency (``max_concurrency``) in all.
- **Batching**, per lane: up to ``BatchSize`` records and at most 6 MB of event per invocation; with
  ``MaximumBatchingWindowInSeconds`` the poller waits for a full batch until the window (which starts when the
  lane's previous invocation ended, or when its first record arrived) has passed.
- **Failures**, per Lambda's rules: with ``ReportBatchItemFailures`` an answer ``{"batchItemFailures":
  [{"itemIdentifier": <SequenceNumber>}]}`` checkpoints just before the lowest reported sequence number and
  retries from there; an empty or null list is a success; a malformed list (missing, empty or unknown
  identifiers) fails the whole batch. A function error with ``BisectBatchOnFunctionError`` splits the batch in
  two and retries each half; splitting is free, and ``MaximumRetryAttempts`` counts the retries of a batch
  that cannot be split further. A batch whose retries are exhausted, or whose records are older than
  ``MaximumRecordAgeInSeconds``, is skipped and its metadata is sent to the ``OnFailure`` destination (an SQS
  message shaped like Lambda's, with ``DDBStreamBatchInfo``). All of this is per lane: a failing batch holds
  back only the keys of its own lane, as on AWS.
- **Retries after a partial failure** count against ``MaximumRetryAttempts`` only when the invocation
  checkpointed nothing (the lowest reported record was the batch's first). AWS does not say plainly whether
  such a retry counts; it says that with bisection on, a partial response "bisects" the batch at the reported
  record, and that splitting does not count. A retry after progress is that split, so it is free here: a lane
  whose merge keeps deferring records to return before its timeout (``lineage_intake.stream_batch``) always
  progresses and never sends healthy records to the DLQ. docs/merge.md#failures-what-holds-a-lane-and-for-how-long
  has the reading and what the other reading would mean on AWS.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MAX_INVOKE_PAYLOAD_BYTES = 6 * 1024 * 1024
ACTIVE_POLL_SECONDS = 0.1
IDLE_POLL_SECONDS = 0.25  # Lambda polls a shard four times a second when it is idle

InvokeBatch = Callable[[dict[str, Any]], Any]
Log = Callable[[str, str, dict[str, Any]], None]


# ---------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class StreamSourceConfig:
    """A DynamoDB event source mapping: what ``Stack.stream_source()`` reads, plus the ARNs it resolves to."""

    function_logical_id: str
    function_arn: str
    table: str
    batch_size: int
    max_retries: int
    bisect_on_error: bool
    report_item_failures: bool
    filters: tuple[dict[str, Any], ...]
    batching_window_seconds: float
    on_failure_queue_url: str | None = None
    starting_position: str = "TRIM_HORIZON"
    max_record_age_seconds: int = -1
    parallelization_factor: int = 1

    @classmethod
    def from_stack(cls, stack: Any, function_logical_id: str, endpoint: str) -> StreamSourceConfig:
        source = stack.stream_source(function_logical_id)
        props: dict[str, Any] = {}
        for event in stack.resources[function_logical_id]["Properties"].get("Events", {}).values():
            if event["Type"] == "DynamoDB":
                props = event["Properties"]
                break
        queue = source.get("on_failure_queue")
        config = cls(
            function_logical_id=function_logical_id,
            function_arn=stack.arn(function_logical_id),
            table=source["table"],
            batch_size=int(source["batch_size"]),
            max_retries=int(source["max_retries"]),
            bisect_on_error=bool(source["bisect_on_error"]),
            report_item_failures=bool(source["report_item_failures"]),
            filters=tuple(source["filters"]),
            batching_window_seconds=float(source["batching_window_seconds"]),
            on_failure_queue_url=stack.queue_url(queue, endpoint) if queue else None,
            starting_position=str(props.get("StartingPosition", "TRIM_HORIZON")),
            max_record_age_seconds=int(props.get("MaximumRecordAgeInSeconds", -1)),
            parallelization_factor=int(props.get("ParallelizationFactor", 1)),
        )
        config.validate()
        return config

    def validate(self) -> None:
        if not 1 <= self.batch_size <= 10_000:
            raise ValueError(f"BatchSize {self.batch_size} is outside 1..10000")
        if not 1 <= self.parallelization_factor <= 10:
            raise ValueError(f"ParallelizationFactor {self.parallelization_factor} is outside 1..10")
        if self.starting_position not in ("TRIM_HORIZON", "LATEST"):
            raise ValueError(f"StartingPosition {self.starting_position!r} is not supported for DynamoDB streams")
        for pattern in self.filters:
            check_pattern(pattern)


# ---------------------------------------------------------------------------- event filtering
_OPERATORS = frozenset({"prefix", "suffix", "equals-ignore-case", "anything-but", "numeric", "exists"})
_MISSING = object()


def check_pattern(pattern: Any, path: str = "") -> None:
    """Refuse patterns that use syntax this poller does not implement."""
    if not isinstance(pattern, dict) or not pattern:
        raise ValueError(f"filter pattern {path or '(root)'} must be a non-empty object")
    for key, value in pattern.items():
        where = f"{path}.{key}" if path else key
        if isinstance(value, dict):
            check_pattern(value, where)
        elif isinstance(value, list):
            if not value:
                raise ValueError(f"filter pattern {where}: an empty list matches nothing")
            for matcher in value:
                if isinstance(matcher, dict):
                    if len(matcher) != 1 or next(iter(matcher)) not in _OPERATORS:
                        raise ValueError(f"filter pattern {where}: unsupported matcher {matcher!r}")
                elif not (matcher is None or isinstance(matcher, str | int | float | bool)):
                    raise ValueError(f"filter pattern {where}: unsupported value {matcher!r}")
        else:
            raise ValueError(f"filter pattern {where}: values must be objects or lists of matchers")


def matches_any(record: Mapping[str, Any], patterns: Sequence[Mapping[str, Any]]) -> bool:
    """Lambda keeps a record when any filter matches it (no filters: every record)."""
    return not patterns or any(matches(record, p) for p in patterns)


def matches(value: Any, pattern: Mapping[str, Any]) -> bool:
    if not isinstance(value, Mapping):
        return False
    for key, expected in pattern.items():
        actual = value.get(key, _MISSING)
        if isinstance(expected, Mapping):
            if actual is _MISSING or not matches(actual, expected):
                return False
        elif not _leaf_matches(actual, expected):
            return False
    return True


def _leaf_matches(actual: Any, matchers: Sequence[Any]) -> bool:
    for matcher in matchers:
        if isinstance(matcher, Mapping) and "exists" in matcher:
            if bool(matcher["exists"]) == (actual is not _MISSING):
                return True
            continue
        if actual is _MISSING:
            continue
        values = actual if isinstance(actual, list) else [actual]
        if any(_value_matches(v, matcher) for v in values):
            return True
    return False


def _value_matches(value: Any, matcher: Any) -> bool:
    if not isinstance(matcher, Mapping):
        if isinstance(value, Mapping | list):
            return False
        if isinstance(matcher, bool) or isinstance(value, bool):
            return matcher is value
        if isinstance(matcher, int | float) and isinstance(value, int | float):
            return float(matcher) == float(value)
        return bool(matcher == value)
    ((op, arg),) = matcher.items()
    if op == "prefix":
        return isinstance(value, str) and value.startswith(str(arg))
    if op == "suffix":
        return isinstance(value, str) and value.endswith(str(arg))
    if op == "equals-ignore-case":
        return isinstance(value, str) and value.casefold() == str(arg).casefold()
    if op == "anything-but":
        if isinstance(arg, Mapping):
            return not _value_matches(value, arg)
        excluded = arg if isinstance(arg, list) else [arg]
        return not any(_value_matches(value, e) for e in excluded)
    if op == "numeric":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        checks = list(arg)
        for i in range(0, len(checks) - 1, 2):
            comparator, bound = checks[i], float(checks[i + 1])
            ok = {
                "<": value < bound,
                "<=": value <= bound,
                "=": value == bound,
                ">": value > bound,
                ">=": value >= bound,
            }.get(comparator)
            if not ok:
                return False
        return True
    return False


# ---------------------------------------------------------------------------- records
def attribute_to_json(value: Mapping[str, Any]) -> dict[str, Any]:
    """A boto3-parsed attribute value back into the JSON that Lambda sends (binary as base64)."""
    ((kind, inner),) = value.items()
    if kind == "B":
        return {"B": base64.b64encode(bytes(inner)).decode("ascii")}
    if kind == "BS":
        return {"BS": [base64.b64encode(bytes(b)).decode("ascii") for b in inner]}
    if kind == "M":
        return {"M": {k: attribute_to_json(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [attribute_to_json(v) for v in inner]}
    return {kind: inner}


def lambda_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """One ``GetRecords`` record as an element of the ``Records`` list of a Lambda event."""
    src = record["dynamodb"]
    ddb: dict[str, Any] = {}
    created = src.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        ddb["ApproximateCreationDateTime"] = int(created.timestamp())
    elif created is not None:
        ddb["ApproximateCreationDateTime"] = int(float(created))
    for image in ("Keys", "NewImage", "OldImage"):
        if image in src:
            ddb[image] = {k: attribute_to_json(v) for k, v in src[image].items()}
    ddb["SequenceNumber"] = str(src["SequenceNumber"])
    ddb["SizeBytes"] = int(src.get("SizeBytes", 0))
    ddb["StreamViewType"] = src.get("StreamViewType", "NEW_IMAGE")
    out: dict[str, Any] = {
        "eventID": record.get("eventID", uuid.uuid4().hex),
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", "us-east-1"),
        "dynamodb": ddb,
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in record:
        out["userIdentity"] = record["userIdentity"]
    return out


@dataclass
class PendingRecord:
    record: dict[str, Any]
    arrived_at: float  # monotonic time the poller read it
    arrived_wall: datetime
    size: int
    failures: int = 0  # failed invocations that count against MaximumRetryAttempts
    invocations: int = 0

    @property
    def sequence_number(self) -> str:
        return str(self.record["dynamodb"]["SequenceNumber"])

    @property
    def created_epoch(self) -> float | None:
        value = self.record["dynamodb"].get("ApproximateCreationDateTime")
        return float(value) if value is not None else None


def partition_key(record: Mapping[str, Any], hash_key: str) -> str:
    """The partition key of a Lambda stream record (its ``Keys``' hash key attribute), as text."""
    value = record["dynamodb"].get("Keys", {}).get(hash_key)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def lane_of(key: str, lanes: int) -> int:
    """The lane of a partition key: a stable hash, so a key always goes to the same lane."""
    return zlib.crc32(key.encode("utf-8")) % lanes


@dataclass
class Lane:
    """One of a shard's ``ParallelizationFactor`` batchers: the records whose key hashes to it, in order."""

    shard_id: str
    index: int = 0
    buffer: deque[PendingRecord] = field(default_factory=deque)
    #: Sizes of the batches still owed to a failed batch (bisected halves, or the records left to retry).
    segments: deque[int] = field(default_factory=deque)
    window_start: float = 0.0
    retry_at: float = 0.0
    busy: bool = False  # an invocation of this lane is in flight


@dataclass
class ShardState:
    shard_id: str
    iterator: str | None
    lanes: list[Lane] = field(default_factory=list)
    closed: bool = False


@dataclass
class PollerStats:
    read: int = 0
    filtered_out: int = 0
    invocations: int = 0
    function_errors: int = 0
    partial_failures: int = 0
    delivered: int = 0
    sent_to_dlq: int = 0
    dlq_messages: int = 0


class InvalidBatchResponse(Exception):
    pass


def failed_sequence_numbers(result: Any, batch: Sequence[PendingRecord]) -> list[str]:
    """The sequence numbers a ``ReportBatchItemFailures`` answer reports. Raises ``InvalidBatchResponse``
    when Lambda would treat the answer as a failure of the whole batch."""
    if result is None or not isinstance(result, Mapping):
        return []
    failures = result.get("batchItemFailures")
    if failures is None:
        return []
    if not isinstance(failures, list):
        raise InvalidBatchResponse("batchItemFailures is not a list")
    known = {r.sequence_number for r in batch}
    numbers = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not isinstance(identifier, str) or not identifier or identifier not in known:
            raise InvalidBatchResponse(f"batchItemFailures holds an invalid itemIdentifier: {failure!r}")
        numbers.append(identifier)
    return numbers


# ---------------------------------------------------------------------------- the poller
class StreamPoller:
    """Polls one table's stream and invokes one function, in a background thread (``start``/``stop``), with at
    most ``max_concurrency`` invocations in flight (the function's local concurrency)."""

    def __init__(
        self,
        config: StreamSourceConfig,
        invoke: InvokeBatch,
        dynamodb: Any,
        streams: Any,
        sqs: Any,
        log: Log,
        forget_iterator: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        retry_delay: float = ACTIVE_POLL_SECONDS,
        max_concurrency: int = 1,
    ) -> None:
        config.validate()
        self.config = config
        self.invoke = invoke
        self.dynamodb = dynamodb
        self.streams = streams
        self.sqs = sqs
        self.log = log
        self.forget_iterator = forget_iterator
        self.clock = clock
        self.retry_delay = retry_delay
        self.stats = PollerStats()
        self.stream_arn = ""
        self.hash_key = "pk"
        self.max_concurrency = max(1, max_concurrency)
        self._shards: dict[str, ShardState] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        # Lanes, buffers and stats are shared by the polling thread and the invocations: one lock guards them
        # (never held during an invocation). ``_changed`` wakes whoever waits for an invocation to end.
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._running = 0
        self._wake = threading.Event()
        self._executor = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="invoke")

    # -------------------------------------------------------------- lifecycle
    def attach(self) -> None:
        """Find the table's stream and take a shard iterator per shard, at the template's starting position."""
        description = self.dynamodb.describe_table(TableName=self.config.table)["Table"]
        arn = description.get("LatestStreamArn")
        if not arn:
            raise RuntimeError(f"table {self.config.table} has no stream; the template declares one")
        self.stream_arn = arn
        self.hash_key = next(k["AttributeName"] for k in description["KeySchema"] if k["KeyType"] == "HASH")
        self._refresh_shards()

    def start(self) -> None:
        self.attach()
        self._thread = threading.Thread(target=self._run, name=f"poller-{self.config.function_logical_id}")
        self._thread.daemon = True
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the polling thread to stop after its current call, without waiting (``stop`` waits)."""
        self._stop.set()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        # An invocation in flight is not waited for: the stack closes the function's workers, which ends it.
        self._executor.shutdown(wait=False, cancel_futures=True)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every record read so far has been handled and the last read found nothing new."""
        self._idle.clear()
        return self._idle.wait(timeout)

    # -------------------------------------------------------------- reading
    def _refresh_shards(self) -> None:
        description = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        for shard in description.get("Shards", []):
            shard_id = shard["ShardId"]
            if shard_id in self._shards:
                continue
            parent = shard.get("ParentShardId")
            # A child shard starts at its beginning once its parent is known; a new mapping starts where
            # the template says.
            kind = "TRIM_HORIZON" if parent in self._shards else self.config.starting_position
            iterator = self.streams.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType=kind
            )["ShardIterator"]
            lanes = [Lane(shard_id=shard_id, index=i) for i in range(self.config.parallelization_factor)]
            self._shards[shard_id] = ShardState(shard_id=shard_id, iterator=iterator, lanes=lanes)

    def _read(self, shard: ShardState) -> int:
        if shard.closed or shard.iterator is None:
            return 0
        used = shard.iterator
        answer = self.streams.get_records(ShardIterator=used, Limit=1000)
        shard.iterator = answer.get("NextShardIterator")
        if self.forget_iterator is not None and shard.iterator != used:
            self.forget_iterator(used)
        if shard.iterator is None:
            shard.closed = True
        now, wall = self.clock(), datetime.now(UTC)
        for raw in answer.get("Records", []):
            record = lambda_record(raw, self.stream_arn)
            keep = matches_any(record, self.config.filters)
            size = len(json.dumps(record, separators=(",", ":")))
            lane = shard.lanes[lane_of(partition_key(record, self.hash_key), len(shard.lanes))]
            with self._lock:
                self.stats.read += 1
                if not keep:
                    self.stats.filtered_out += 1
                    continue
                if not lane.buffer and not lane.segments:
                    lane.window_start = max(lane.window_start, now)
                lane.buffer.append(PendingRecord(record=record, arrived_at=now, arrived_wall=wall, size=size))
        return len(answer.get("Records", []))

    # -------------------------------------------------------------- the loop
    def poll_once(self) -> int:
        """One pass: read every shard once, then invoke the function for every batch that is ready, and wait
        for those invocations (and the batches that become ready as they end: retries, the rest of a lane).

        Returns the number of invocations. Tests call it directly (without ``start()``'s thread, after
        ``attach()``) to step the poller deterministically; the background thread does not wait.
        """
        return self._pass(wait=True)

    def _pass(self, wait: bool) -> int:
        read = sum(self._read(shard) for shard in list(self._shards.values()))
        invocations = 0
        while not self._stop.is_set():
            started = self._dispatch()
            invocations += started
            if not wait:
                break
            with self._changed:
                if not started and not self._running:
                    break
                if self._running:
                    self._changed.wait(ACTIVE_POLL_SECONDS)
        if any(s.closed for s in self._shards.values()):
            self._refresh_shards()
        with self._lock:
            if read == 0 and invocations == 0 and not self._running and not self._pending():
                self._idle.set()
        return invocations

    def _lanes(self) -> list[Lane]:
        return [lane for shard in list(self._shards.values()) for lane in shard.lanes]

    def _limit(self) -> int:
        """Concurrent invocations allowed: factor x shards (open ones), bounded by the function's concurrency."""
        shards = sum(1 for s in self._shards.values() if s.lanes)
        return max(1, min(self.config.parallelization_factor * shards, self.max_concurrency))

    def _dispatch(self) -> int:
        """Start an invocation for every idle lane whose batch is ready, within the concurrency limit; the lanes
        whose oldest record waits longest first, so that no lane starves when there are more lanes than slots."""
        started = 0
        with self._lock:
            ready = [lane for lane in self._lanes() if not lane.busy and self._ready(lane)]
            oldest_first = sorted(
                ready, key=lambda lane: (lane.buffer[0].arrived_at, int(lane.buffer[0].sequence_number))
            )
            for lane in oldest_first:
                if self._running >= self._limit() or self._stop.is_set():
                    break
                lane.busy = True
                self._running += 1
                started += 1
                self._executor.submit(self._invoke_lane, lane)
        return started

    def _invoke_lane(self, lane: Lane) -> None:
        try:
            self._process(lane)
        except Exception as exc:  # a bug in the poller itself: the lane's records stay and are retried
            self.log("ERROR", "stream poller failed", {"error": repr(exc), "table": self.config.table})
        finally:
            with self._changed:
                lane.busy = False
                self._running -= 1
                self._changed.notify_all()
            self._wake.set()

    @property
    def pending(self) -> int:
        """Records read and not yet handled (delivered, dropped or sent to the DLQ)."""
        with self._lock:
            return self._pending()

    def _pending(self) -> int:
        return sum(len(lane.buffer) for lane in self._lanes())

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self._pass(wait=False)
            except Exception as exc:  # the endpoint went away, or a bug: log, back off, go on
                if self._stop.is_set():
                    break
                self.log("ERROR", "stream poller failed", {"error": repr(exc), "table": self.config.table})
                self._stop.wait(1.0)
                continue
            # Sleep until the next poll, a due batch, or the end of an invocation (its lane may have more).
            self._wake.wait(self._pause())

    def _pause(self) -> float:
        """How long to sleep: until the next poll, or sooner when a batching window or a retry is due."""
        with self._lock:
            if not self._pending():
                return IDLE_POLL_SECONDS
            now = self.clock()
            due = [now + ACTIVE_POLL_SECONDS]
            for lane in self._lanes():
                if lane.buffer and not lane.busy:
                    due.append(
                        lane.retry_at if lane.segments else lane.window_start + self.config.batching_window_seconds
                    )
            return max(0.0, min(due) - now)

    def _ready(self, lane: Lane) -> bool:
        if not lane.buffer:
            return False
        now = self.clock()
        if lane.segments:
            return now >= lane.retry_at
        if len(lane.buffer) >= self.config.batch_size:
            return True
        if sum(r.size for r in lane.buffer) >= MAX_INVOKE_PAYLOAD_BYTES:
            return True
        return now - lane.window_start >= self.config.batching_window_seconds

    def _take(self, lane: Lane) -> list[PendingRecord]:
        if lane.segments:
            return [lane.buffer[i] for i in range(min(lane.segments[0], len(lane.buffer)))]
        batch: list[PendingRecord] = []
        payload = 0
        for record in lane.buffer:
            if len(batch) >= self.config.batch_size:
                break
            if batch and payload + record.size > MAX_INVOKE_PAYLOAD_BYTES:
                break
            batch.append(record)
            payload += record.size
        return batch

    def _process(self, lane: Lane) -> None:
        """One invocation of a lane's next batch (the lane is busy: nothing else takes from it meanwhile)."""
        with self._lock:
            if self._expire_old_records(lane):
                return
            batch = self._take(lane)
            from_segment = bool(lane.segments)
            self.stats.invocations += 1
            for record in batch:
                record.invocations += 1
        event = {"Records": [r.record for r in batch]}
        error: str | None = None
        failed: list[str] = []
        try:
            result = self.invoke(event)
            if self.config.report_item_failures:
                failed = failed_sequence_numbers(result, batch)
        except InvalidBatchResponse as exc:
            error = str(exc)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            lane.window_start = self.clock()
            if error is None and not failed:
                self._done(lane, len(batch), from_segment)
                return
            if error is None:
                self._partial_failure(lane, batch, failed, from_segment)
            else:
                self._function_error(lane, batch, error, from_segment)
            lane.retry_at = self.clock() + self.retry_delay

    def _done(self, lane: Lane, count: int, from_segment: bool) -> None:
        for _ in range(count):
            lane.buffer.popleft()
        self.stats.delivered += count
        if from_segment:
            lane.segments.popleft()

    def _partial_failure(self, lane: Lane, batch: list[PendingRecord], failed: list[str], from_segment: bool) -> None:
        self.stats.partial_failures += 1
        lowest = min(failed, key=int)
        index = next(i for i, r in enumerate(batch) if r.sequence_number == lowest)
        self._done(lane, index, from_segment=False)
        remaining = batch[index:]
        counted = index == 0  # no record checkpointed: the same records again, a retry (see the module docstring)
        if counted:
            for record in remaining:
                record.failures += 1
        self.log(
            "WARNING",
            "stream batch partially failed",
            {
                "function": self.config.function_logical_id,
                "checkpoint": lowest,
                "retrying": len(remaining),
                "retryCounted": counted,
            },
        )
        if from_segment:
            lane.segments.popleft()
        if self._exhausted(remaining):
            self._discard(lane, remaining, "RetryAttemptsExhausted", function_error=None)
            return
        lane.segments.appendleft(len(remaining))

    def _function_error(self, lane: Lane, batch: list[PendingRecord], error: str, from_segment: bool) -> None:
        self.stats.function_errors += 1
        self.log(
            "ERROR",
            "stream batch failed",
            {"function": self.config.function_logical_id, "records": len(batch), "error": error},
        )
        if from_segment:
            lane.segments.popleft()
        if self.config.bisect_on_error and len(batch) > 1:
            half = (len(batch) + 1) // 2
            lane.segments.appendleft(len(batch) - half)
            lane.segments.appendleft(half)
            return
        for record in batch:
            record.failures += 1
        if self._exhausted(batch):
            self._discard(lane, batch, "RetryAttemptsExhausted", function_error="Unhandled")
            return
        lane.segments.appendleft(len(batch))

    def _exhausted(self, batch: Sequence[PendingRecord]) -> bool:
        limit = self.config.max_retries
        return limit >= 0 and max(r.failures for r in batch) > limit

    def _expire_old_records(self, lane: Lane) -> bool:
        limit = self.config.max_record_age_seconds
        if limit < 0 or not lane.buffer:
            return False
        now = time.time()
        expired: list[PendingRecord] = []
        for record in lane.buffer:
            created = record.created_epoch
            if created is None or now - created <= limit:
                break
            expired.append(record)
        if not expired:
            return False
        if lane.segments:  # the expired records leave whatever failed batch they belonged to
            lane.segments.clear()
        self._discard(lane, expired, "RecordAgeExceeded", function_error=None)
        return True

    def _discard(
        self, lane: Lane, records: Sequence[PendingRecord], condition: str, function_error: str | None
    ) -> None:
        """Skip ``records`` (the front of the buffer) and send their metadata to the OnFailure destination."""
        for _ in records:
            lane.buffer.popleft()
        self.stats.sent_to_dlq += len(records)
        message = failure_message(
            self.config, self.stream_arn, lane.shard_id, records, condition, function_error=function_error
        )
        self.log(
            "ERROR",
            "stream records skipped",
            {
                "function": self.config.function_logical_id,
                "condition": condition,
                "records": len(records),
                "startSequenceNumber": records[0].sequence_number,
                "endSequenceNumber": records[-1].sequence_number,
                "destination": self.config.on_failure_queue_url,
            },
        )
        if self.config.on_failure_queue_url:
            self.sqs.send_message(QueueUrl=self.config.on_failure_queue_url, MessageBody=json.dumps(message))
            self.stats.dlq_messages += 1


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def failure_message(
    config: StreamSourceConfig,
    stream_arn: str,
    shard_id: str,
    records: Sequence[PendingRecord],
    condition: str,
    function_error: str | None,
) -> dict[str, Any]:
    """The record Lambda sends to an OnFailure destination for a skipped stream batch (metadata only)."""
    response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if function_error:
        response["functionError"] = function_error
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": config.function_arn,
            "condition": condition,
            "approximateInvokeCount": max(r.invocations for r in records),
        },
        "responseContext": response,
        "version": "1.0",
        "timestamp": _iso(datetime.now(UTC)),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": records[0].sequence_number,
            "endSequenceNumber": records[-1].sequence_number,
            "approximateArrivalOfFirstRecord": _iso(records[0].arrived_wall),
            "approximateArrivalOfLastRecord": _iso(records[-1].arrived_wall),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }
