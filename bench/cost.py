"""Cost per million events, from metered units and measured times, at the list prices printed with it.

How a bench uses it::

    from cost import FunctionLoad, LogBytes, Profile, StreamMapping, Traffic, authorizer_invocations_per_event, ...
    memory = memory_sizes()                                   # MemorySize per function, from template.yaml
    traffic = Traffic(events_per_second=100, tokens=10)       # the load assumed, printed with the figure
    profile = Profile(
        name="single POSTs",
        http_requests=1.0,                                    # per event: 1 for single POSTs, 1/100 in batches of 100
        functions=[
            FunctionLoad("IngestFunction", memory["IngestFunction"], invocations=1.0, ms=ingest_ms),
            FunctionLoad("AuthorizerFunction", memory["AuthorizerFunction"],
                         invocations=authorizer_invocations_per_event(1, traffic), ms=auth_ms),
            FunctionLoad("MergeFunction", memory["MergeFunction"],
                         invocations=StreamMapping.of().invocations_per_event(traffic), ms=merge_ms),
        ],
        wru=used.total_wru / n, rru=used.total_rru / n,       # from meter.Meter, per event
        log_bytes=logs.bytes / n,                             # handlers' output, from `with LogBytes() as logs:`
    )                                                         # (Lambda's START/END/REPORT lines are added)
    for line in report(profile, target_usd=2.50, floor_wru=2.5):   # the layout's floor printed beside it
        print(line)

``ms`` is the measured time per event of that function (CPU time when that is what the bench measures:
then the Lambda figure is a lower bound, as a deployed function also waits on DynamoDB). Lambda bills each
invocation's duration rounded up to 1 ms, so the time per invocation (``ms / invocations``) is rounded up.
Prices: us-east-1 list prices (https://aws.amazon.com/api-gateway/pricing/, /lambda/pricing/,
/dynamodb/pricing/on-demand/, /cloudwatch/pricing/); free tiers are left out.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

HTTP_API_PER_MILLION_REQUESTS = 1.00
LAMBDA_PER_GB_SECOND_ARM64 = 0.0000133334
LAMBDA_PER_MILLION_REQUESTS = 0.20
DYNAMODB_PER_MILLION_WRU = 0.625
DYNAMODB_PER_MILLION_RRU = 0.125
LOGS_PER_GB_INGESTED = 0.50
GB = 1024**3  # Lambda's GB-s is 1,024 MB; logs GB taken the same way (the difference is 7%, of cents)

MILLION = 1_000_000


def price_lines() -> list[str]:
    return [
        "list prices (us-east-1): HTTP API $1.00 per million requests; Lambda arm64 $0.0000133334 per GB-s and "
        "$0.20 per million requests;",
        "  DynamoDB on-demand $0.625 per million write units and $0.125 per million read units; "
        "CloudWatch Logs $0.50 per GB ingested",
    ]


def load_template() -> dict[str, Any]:
    """template.yaml through the project's template reader."""
    from lineage_intake_tools.local.template import load_template as load

    return load()


def load_template_at(path: Path) -> dict[str, Any]:
    """Another checkout's template.yaml (a baseline's), through the project's template reader."""
    from lineage_intake_tools.local.template import load_template as load

    return load(path)


def memory_sizes(template: Mapping[str, Any] | None = None) -> dict[str, int]:
    """MemorySize of each function of the template, the Globals default where it sets none."""
    template = template if template is not None else load_template()
    default = int(template.get("Globals", {}).get("Function", {}).get("MemorySize", 128))
    return {
        name: int(res.get("Properties", {}).get("MemorySize", default))
        for name, res in template["Resources"].items()
        if res["Type"] == "AWS::Serverless::Function"
    }


# The lines Lambda itself writes to the function's log group per invocation (text format, Tracing: Active), in
# the documented layout (https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html) with typical values.
_PLATFORM_LINES = (
    "START RequestId: 8f507cfc-1d5e-4697-b07a-ac58fc914c95 Version: $LATEST\n",
    "END RequestId: 8f507cfc-1d5e-4697-b07a-ac58fc914c95\n",
    "REPORT RequestId: 8f507cfc-1d5e-4697-b07a-ac58fc914c95\tDuration: 12.75 ms\tBilled Duration: 13 ms\t"
    "Memory Size: 512 MB\tMax Memory Used: 95 MB\t\n"
    "XRAY TraceId: 1-5e34a614-10bdd2f4e2bd33c0d7c9a2e6\tSegmentId: 1a7d3e2a5e4b5c6d\tSampled: true\n",
)
PLATFORM_LOG_BYTES_PER_INVOCATION = sum(len(line.encode()) for line in _PLATFORM_LINES)


def platform_log_bytes_per_invocation(template: Mapping[str, Any] | None = None) -> int:
    """Lambda's own log bytes per invocation under the template's LoggingConfig: none when every function logs
    in JSON with SystemLogLevel WARN (Lambda then writes platform records only for failed invocations), else
    the text START/END/REPORT lines. Function settings override the Globals', as SAM merges them."""
    template = template if template is not None else load_template()
    default = template.get("Globals", {}).get("Function", {}).get("LoggingConfig", {})
    for res in template["Resources"].values():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        config = {**default, **res.get("Properties", {}).get("LoggingConfig", {})}
        if config.get("LogFormat") != "JSON" or config.get("SystemLogLevel") != "WARN":
            return PLATFORM_LOG_BYTES_PER_INVOCATION
    return 0


class LogBytes:
    """Counts the bytes the handlers log while it is open: print (Powertools Metrics' EMF) and every
    logging StreamHandler writing to stdout or stderr (Powertools Logger binds sys.stdout when created, so
    swapping sys.stdout alone would miss it). The output is swallowed unless ``echo``."""

    def __init__(self, echo: bool = False) -> None:
        self.bytes = 0
        self._echo = echo
        self._saved: list[tuple[Any, Any]] = []

    def write(self, text: str) -> int:
        self.bytes += len(text.encode("utf-8"))
        if self._echo and sys.__stderr__ is not None:
            sys.__stderr__.write(text)
        return len(text)

    def flush(self) -> None:
        return None

    def __enter__(self) -> LogBytes:
        streams = (sys.stdout, sys.stderr)
        loggers = [logging.getLogger(), *(logging.getLogger(name) for name in logging.root.manager.loggerDict)]
        for logger in loggers:
            for handler in logger.handlers:
                if isinstance(handler, logging.StreamHandler) and handler.stream in streams:
                    self._saved.append((handler, handler.setStream(self)))
        self._saved.append((sys, (sys.stdout, sys.stderr)))
        sys.stdout = sys.stderr = self
        return self

    def __exit__(self, *_: object) -> None:
        for owner, previous in reversed(self._saved):
            if owner is sys:
                sys.stdout, sys.stderr = previous
            else:
                owner.setStream(previous)
        self._saved.clear()


@dataclass(frozen=True)
class Traffic:
    """The sustained load a cost figure assumes (printed with it): the same for single POSTs and batches, so
    the two profiles differ only in how the events are sent."""

    events_per_second: float = 100.0  # per stream shard of the Events table
    tokens: int = 10  # producers, each with its own token, sending their share steadily

    def describe(self) -> str:
        return f"{self.events_per_second:g} events/s per stream shard from {self.tokens} tokens"


LOW_RATE = Traffic(events_per_second=0.01, tokens=1)  # an event every 100 s: nothing is shared


def authorizer_invocations_per_event(events_per_request: float, traffic: Traffic, ttl_seconds: float = 60) -> float:
    """Authorizer invocations per event, with API Gateway caching its decision per Authorization header.

    Each token sends ``events_per_second / tokens`` events steadily, ``events_per_request`` per request; its
    cached decision serves every request within ``ttl_seconds``, so a token costs at most one invocation per
    TTL, and one per request when its requests are further apart (or with no cache, TTL 0).
    """
    requests_per_token_second = traffic.events_per_second / traffic.tokens / events_per_request
    per_token_second = (
        requests_per_token_second if ttl_seconds <= 0 else min(requests_per_token_second, 1 / ttl_seconds)
    )
    return per_token_second * traffic.tokens / traffic.events_per_second


@dataclass(frozen=True)
class StreamMapping:
    """The merge's event source mapping on the Events table's stream (template.yaml)."""

    batch_size: int
    window_seconds: float
    parallelization: int

    @classmethod
    def of(cls, template: Mapping[str, Any] | None = None, function: str = "MergeFunction") -> StreamMapping:
        template = template if template is not None else load_template()
        events = template["Resources"][function]["Properties"]["Events"]
        (props,) = [e["Properties"] for e in events.values() if e["Type"] == "DynamoDB"]
        return cls(
            batch_size=int(props.get("BatchSize", 100)),
            window_seconds=float(props.get("MaximumBatchingWindowInSeconds", 0)),
            parallelization=int(props.get("ParallelizationFactor", 1)),
        )

    def invocations_per_event(self, traffic: Traffic) -> float:
        """Lambda gathers a shard's records for up to the batching window (or until a batch is full) and splits
        them by partition key over up to ``parallelization`` concurrent invocations: each invocation then holds
        ``rate x window / parallelization`` records, at least 1 and at most the batch size. With no window,
        every poll (4 a second on DynamoDB streams) is a batch. However the events were POSTed."""
        window = self.window_seconds or 0.25
        per_invocation = traffic.events_per_second * window / self.parallelization
        return 1 / min(max(per_invocation, 1.0), self.batch_size)

    def describe(self) -> str:
        return (
            f"BatchSize {self.batch_size}, MaximumBatchingWindowInSeconds {self.window_seconds:g}, "
            f"ParallelizationFactor {self.parallelization}"
        )


@dataclass(frozen=True)
class FunctionLoad:
    """One Lambda function's share of one event."""

    name: str
    memory_mb: int
    invocations: float  # per event
    ms: float  # measured time per event

    def billed_ms_per_event(self) -> float:
        if self.invocations <= 0:
            return 0.0
        return math.ceil(self.ms / self.invocations) * self.invocations

    def compute_usd(self) -> float:
        return self.billed_ms_per_event() / 1000 * self.memory_mb / 1024 * LAMBDA_PER_GB_SECOND_ARM64

    def requests_usd(self) -> float:
        return self.invocations * LAMBDA_PER_MILLION_REQUESTS / MILLION


@dataclass(frozen=True)
class Profile:
    """Everything one event costs, per event."""

    name: str
    http_requests: float
    functions: list[FunctionLoad] = field(default_factory=list)
    wru: float = 0.0
    rru: float = 0.0
    log_bytes: float = 0.0  # the handlers' own output
    # Lambda's START/END/REPORT lines; 0 when the functions log in JSON with SystemLogLevel WARN
    platform_log_bytes_per_invocation: int = PLATFORM_LOG_BYTES_PER_INVOCATION


def log_bytes_per_event(profile: Profile) -> float:
    """The handlers' measured output plus Lambda's own START/END/REPORT lines of each invocation."""
    invocations = sum(f.invocations for f in profile.functions)
    return profile.log_bytes + invocations * profile.platform_log_bytes_per_invocation


def breakdown(profile: Profile) -> dict[str, float]:
    """Dollars per million events, per line item."""
    per_event = {
        "API Gateway HTTP API requests": profile.http_requests * HTTP_API_PER_MILLION_REQUESTS / MILLION,
        "Lambda requests": sum(f.requests_usd() for f in profile.functions),
        **{f"Lambda compute {f.name}": f.compute_usd() for f in profile.functions},
        "DynamoDB writes": profile.wru * DYNAMODB_PER_MILLION_WRU / MILLION,
        "DynamoDB reads": profile.rru * DYNAMODB_PER_MILLION_RRU / MILLION,
        "CloudWatch Logs": log_bytes_per_event(profile) / GB * LOGS_PER_GB_INGESTED,
    }
    return {item: usd * MILLION for item, usd in per_event.items()}


def floor_usd(profile: Profile, wru: float) -> dict[str, float]:
    """What the layout cannot go under, per million events: the profile's HTTP and Lambda requests and
    ``wru`` write units per event (ingest's 1 WRU item and the merge's writes per run), at list prices."""
    costs = breakdown(profile)
    return {
        "API Gateway HTTP API requests": costs["API Gateway HTTP API requests"],
        "Lambda requests": costs["Lambda requests"],
        "DynamoDB writes": wru * DYNAMODB_PER_MILLION_WRU,
    }


def report(profile: Profile, target_usd: float, floor_wru: float | None = None) -> list[str]:
    """The breakdown, each line with the quantity it comes from, the total and MET/MISSED against the target."""
    costs = breakdown(profile)
    basis = {
        "API Gateway HTTP API requests": f"{profile.http_requests:g} requests/event",
        "Lambda requests": f"{sum(f.invocations for f in profile.functions):.4g} invocations/event",
        "DynamoDB writes": f"{profile.wru:.3g} WRU/event",
        "DynamoDB reads": f"{profile.rru:.3g} RRU/event",
        "CloudWatch Logs": f"{log_bytes_per_event(profile):.0f} log bytes/event ({profile.log_bytes:.0f} from the "
        f"handlers, {profile.platform_log_bytes_per_invocation} per invocation from Lambda)",
    }
    for f in profile.functions:
        basis[f"Lambda compute {f.name}"] = (
            f"{f.ms:.3g} ms/event measured, {f.billed_ms_per_event():.3g} ms billed, {f.memory_mb} MB"
        )
    total = sum(costs.values())
    lines = [f"cost per million events, {profile.name}:"]
    lines += [f"  {item}: ${usd:.4f} ({basis[item]})" for item, usd in costs.items()]
    verdict = "MET" if total <= target_usd else "MISSED"
    lines.append(f"  total: ${total:.4f} per million events (target <= ${target_usd:.2f}): {verdict}")
    if floor_wru is not None:
        floor = floor_usd(profile, floor_wru)
        lines.append(
            f"  floor of this layout: ${sum(floor.values()):.4f} (HTTP ${floor['API Gateway HTTP API requests']:.4f}"
            f" + Lambda requests ${floor['Lambda requests']:.4f} + writes ${floor['DynamoDB writes']:.4f} at "
            f"{floor_wru:.3g} WRU/event; no compute, reads or logs): the total is ${total - sum(floor.values()):.4f}"
            f" above it; the target is "
            + (
                f"${target_usd - sum(floor.values()):.4f} above it"
                if target_usd >= sum(floor.values())
                else f"${sum(floor.values()) - target_usd:.4f} below it: out of this layout's reach"
            )
        )
    return lines
