"""One lock around moto's in-process DynamoDB backend, for the local stack only (never the Lambda code path).

moto's ``TransactWriteItems`` deep-copies every table it touches before it writes (to roll back on a failed
condition), and on a failure puts that copy back in place of the table. Under the local stack's concurrency
(the HTTP front, the merge workers and the CLI all call the one ``ThreadedMotoServer`` at once) this broke in
two ways: the copy iterated a table's items while another request added one ("dictionary changed size during
iteration", 14 times in one load test, 6 stream records sent to the DLQ), and a rolled-back transaction
erased whatever other requests had written to that table since its copy. DynamoDB does neither.

``serialise_dynamodb()`` wraps every public method of moto's ``DynamoDBBackend`` (and the Streams backend's
``GetRecords``, which reads the tables' stream shards) with one re-entrant lock, so a transaction, its copy and
its rollback are atomic against every other read and write. moto's work is pure Python under the GIL, so the
lock serialises nothing that ran in parallel before. See docs/merge.md "The local stack".
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

LOCK = threading.RLock()
_MARK = "_lineage_intake_serialised"


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with LOCK:
            return method(*args, **kwargs)

    setattr(wrapper, _MARK, method)
    return wrapper


def _targets() -> list[type]:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    return [DynamoDBBackend, DynamoDBStreamsBackend]


def _public_methods(cls: type) -> list[str]:
    names = []
    for name, value in vars(cls).items():
        if name.startswith("_") or not callable(value) or isinstance(value, staticmethod | classmethod | type):
            continue
        names.append(name)
    return names


def serialise_dynamodb() -> None:
    """Install the lock on moto's DynamoDB and DynamoDB Streams backends of this process (idempotent)."""
    for cls in _targets():
        for name in _public_methods(cls):
            method = vars(cls)[name]
            if not hasattr(method, _MARK):
                setattr(cls, name, _locked(method))


def unserialise_dynamodb() -> None:
    """Remove the lock again (tests compare moto with and without it in one process)."""
    for cls in _targets():
        for name in _public_methods(cls):
            original = getattr(vars(cls)[name], _MARK, None)
            if original is not None:
                setattr(cls, name, original)


def is_serialised() -> bool:
    from moto.dynamodb.models import DynamoDBBackend

    return hasattr(vars(DynamoDBBackend)["transact_write_items"], _MARK)
