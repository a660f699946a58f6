"""What happens to a boto3 DynamoDB client's calls, seen and changed through botocore's events (the code under
test is not touched): which threads made them, another writer that gets to an item between the merge's read and
its write, a write that storage refuses as throttled, a write that lands but whose answer never comes back."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError, ReadTimeoutError

UPDATE_ITEM = "before-parameter-build.dynamodb.UpdateItem"
TRANSACT = "before-parameter-build.dynamodb.TransactWriteItems"


class CallThreads:
    """The name of the thread that made each call of a client, by operation."""

    def __init__(self, client: Any) -> None:
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        client.meta.events.register("before-parameter-build.dynamodb", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls.append((model.name, threading.current_thread().name))

    def of(self, operation: str) -> set[str]:
        return {thread for name, thread in self.calls if name == operation}


def _is_update_of(params: Mapping[str, Any], pk: str, sk: str) -> bool:
    return params.get("Key") == {"pk": {"S": pk}, "sk": {"S": sk}}


def before_first_update(client: Any, pk: str, sk: str, act: Callable[[], None]) -> None:
    """Run ``act`` once, just before the client's first UpdateItem of the item (``pk``, ``sk``), on the thread
    that makes it: another writer that got there between the merge's read and its write."""
    lock, done = threading.Lock(), threading.Event()

    def hook(params: Mapping[str, Any], **_: Any) -> None:
        with lock:
            if done.is_set() or not _is_update_of(params, pk, sk):
                return
            done.set()
        act()

    client.meta.events.register(UPDATE_ITEM, hook)


def _throttled(operation: str) -> ClientError:
    error = {"Code": "ProvisionedThroughputExceededException", "Message": "Rate of requests exceeds"}
    return ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)


def throttle_updates(client: Any, pk: str, sk: str) -> Callable[[], None]:
    """Every UpdateItem of (``pk``, ``sk``) fails as DynamoDB throttling fails it. Returns the function that
    ends the throttling."""

    def hook(params: Mapping[str, Any], **_: Any) -> None:
        if _is_update_of(params, pk, sk):
            raise _throttled("UpdateItem")

    client.meta.events.register(UPDATE_ITEM, hook)
    return lambda: client.meta.events.unregister(UPDATE_ITEM, hook)


def throttle_transactions(client: Any, after: int = 0) -> Callable[[], None]:
    """Every TransactWriteItems of the client after the first ``after`` fails as throttled (its retries too).
    Returns the function that ends the throttling."""
    made = iter(range(after))

    def hook(**_: Any) -> None:
        if next(made, None) is None:
            raise _throttled("TransactWriteItems")

    client.meta.events.register(TRANSACT, hook)
    return lambda: client.meta.events.unregister(TRANSACT, hook)


def lost_answer_after_update(client: Any, pk: str, sk: str) -> None:
    """The client's first UpdateItem of (``pk``, ``sk``) is made, and then times out as if its answer was lost
    (a crash or a timeout after the write: the caller cannot tell it landed). Once."""
    pending, done = threading.local(), threading.Event()

    def before(params: Mapping[str, Any], **_: Any) -> None:
        pending.mine = not done.is_set() and _is_update_of(params, pk, sk)

    def after(**_: Any) -> None:
        if getattr(pending, "mine", False):
            pending.mine = False
            done.set()
            raise ReadTimeoutError(endpoint_url="https://dynamodb.invalid")

    client.meta.events.register(UPDATE_ITEM, before)
    client.meta.events.register("after-call.dynamodb.UpdateItem", after)


class ItemUpdates:
    """The UpdateExpressions of the client's UpdateItems of one item, in order (transactions not included)."""

    def __init__(self, client: Any, pk: str, sk: str) -> None:
        self.expressions: list[str] = []
        self._item = (pk, sk)
        client.meta.events.register(UPDATE_ITEM, self._record)

    def _record(self, params: Mapping[str, Any], **_: Any) -> None:
        if _is_update_of(params, *self._item):
            self.expressions.append(str(params.get("UpdateExpression")))
