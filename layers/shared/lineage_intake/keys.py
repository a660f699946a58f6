"""DynamoDB key encoding: one home for every key of every table.

Names in OpenLineage are unbounded and may contain any character (``#``, ``|``, ``/``, unicode), while a
DynamoDB partition key is at most 2048 bytes and a sort key at most 1024 bytes. So a key never embeds a
raw name: it embeds a SHA-256 digest of an injective encoding of the name parts. Each part is prefixed
with its UTF-8 byte length, so ``("a#b", "c")`` and ``("a", "b#c")`` encode differently, and the digest
keeps every key at a fixed, small size. The readable names travel as ordinary attributes.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from lineage_intake.models import format_event_time

KEY_DIGEST_CHARS = 40  # 160 bits of SHA-256: collisions are not a practical concern


def encode_parts(*parts: str) -> bytes:
    """Injective encoding of a tuple of strings: ``<byte length>:<bytes>`` for each part."""
    out = bytearray()
    for part in parts:
        raw = part.encode("utf-8", "surrogatepass")
        out += str(len(raw)).encode("ascii") + b":" + raw
    return bytes(out)


def digest(*parts: str) -> str:
    return hashlib.sha256(encode_parts(*parts)).hexdigest()[:KEY_DIGEST_CHARS]


# ---------------------------------------------------------------------------- Events table
def run_pk(namespace: str, job: str, run_id: str) -> str:
    """Partition of a run's events: (job namespace, job name, normalized runId)."""
    return f"RUN#{digest(namespace, job, run_id)}"


def dataset_pk(namespace: str, name: str) -> str:
    """Partition of a dataset's static DatasetEvents."""
    return f"DATASET#{digest(namespace, name)}"


def job_pk(namespace: str, name: str) -> str:
    """Partition of a job's static JobEvents."""
    return f"JOB#{digest(namespace, name)}"


def event_sk(event_time: datetime, event_id: str) -> str:
    """Events of a partition sort by eventTime; the content digest tells events of the same instant apart."""
    return f"{format_event_time(event_time)}#{event_id}"


# ---------------------------------------------------------------------------- shared by lineage records
def job_key(namespace: str, name: str) -> str:
    return f"J#{digest(namespace, name)}"


def dataset_key(namespace: str, name: str) -> str:
    return f"D#{digest(namespace, name)}"


def run_key(run_id: str) -> str:
    """The Lineage-table partition of a runId (normalized): the runs of every job that uses it, their
    checkpoints and their child links (docs/merge.md)."""
    return f"R#{digest(run_id)}"


def field_key(namespace: str, name: str, field: str) -> str:
    """A column of a dataset (column lineage records)."""
    return f"F#{digest(namespace, name, field)}"


def namespace_key(namespace: str) -> str:
    """A namespace of the Lineage table (its listing item, docs/read-api.md)."""
    return f"N#{digest(namespace)}"
