"""``.local/logs/``: the local stack's log lines in files, one per function plus the API's access log.

CloudWatch keeps one log group per function and one for the HTTP API's access log; the local stack writes the
same lines to one file per log group, named after the group's logical id in ``template.yaml``
(``IngestLogGroup.log``, ``HttpApiAccessLogGroup.log``, ...), so ``lineage-intake logs`` can run the template's
saved queries over them by the same names (docs/local.md#logs). The files start empty on every start, like the
stack's state.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any


def file_name(log_group_logical_id: str) -> str:
    return f"{log_group_logical_id}.log"


def function_log_groups(template: Mapping[str, Any]) -> dict[str, str]:
    """Function logical id -> the logical id of its log group (``LoggingConfig.LogGroup: !Ref ...``)."""
    groups: dict[str, str] = {}
    for logical, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        ref = resource["Properties"].get("LoggingConfig", {}).get("LogGroup")
        if isinstance(ref, dict) and "Ref" in ref:
            groups[logical] = ref["Ref"]
    return groups


def access_log_group(template: Mapping[str, Any]) -> str | None:
    """The logical id of the HTTP API's access log group (``DestinationArn: !GetAtt Group.Arn``)."""
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::HttpApi":
            continue
        arn = resource["Properties"].get("AccessLogSettings", {}).get("DestinationArn")
        if isinstance(arn, dict) and "Fn::GetAtt" in arn:
            target = arn["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else target.split(".")[0])
    return None


def access_log_format(template: Mapping[str, Any]) -> str | None:
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::HttpApi":
            fmt = resource["Properties"].get("AccessLogSettings", {}).get("Format")
            return str(fmt) if fmt else None
    return None


def reset(directory: Path, names: list[str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_bytes(b"")


class LineAppender:
    """Appends whole lines to a file with one ``write`` each on an ``O_APPEND`` descriptor, so that several
    processes (a function's workers) can share the file without interleaving their lines."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            if "\n" in self._pending:
                complete, _, self._pending = self._pending.rpartition("\n")
                os.write(self.fd, (complete + "\n").encode("utf-8", "replace"))
        return len(text)

    def write_line(self, line: str) -> None:
        self.write(line + "\n")

    def close(self) -> None:
        with self._lock:
            if self._pending:
                os.write(self.fd, (self._pending + "\n").encode("utf-8", "replace"))
                self._pending = ""
            os.close(self.fd)


class Tee:
    """A worker's stdout: whole lines to the original stream and to a ``LineAppender``.

    ``print`` writes a line and its newline in two calls, and a worker serves requests on several threads, so
    each thread's partial line is held apart and a line goes out in one ``write``, under a lock: two threads'
    lines never run into each other (a metric line glued to a log line would be lost to JSON readers)."""

    def __init__(self, original: Any, appender: LineAppender) -> None:
        self.original = original
        self.appender = appender
        self._local = threading.local()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        pending = getattr(self._local, "pending", "") + text
        if "\n" in pending:
            complete, _, pending = pending.rpartition("\n")
            with self._lock:
                self.appender.write(complete + "\n")
                self.original.write(complete + "\n")
        self._local.pending = pending
        return len(text)

    def flush(self) -> None:
        self.original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


def read_lines(path: Path) -> Iterator[str]:
    if not path.exists():
        return
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.strip():
                yield line.rstrip("\n")
