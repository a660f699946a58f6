"""What happens to a boto3 DynamoDB client's calls, seen and changed through botocore's events (the code under
test is not touched): which threads made them, another writer that gets to an item between the merge's read and
its write, a write that storage refuses as throttled."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

UPDATE_ITEM = "before-parameter-build.dynamodb.UpdateItem"


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


def throttle_updates(client: Any, pk: str, sk: str) -> Callable[[], None]:
    """Every UpdateItem of (``pk``, ``sk``) fails as DynamoDB throttling fails it. Returns the function that
    ends the throttling."""

    def hook(params: Mapping[str, Any], **_: Any) -> None:
        if _is_update_of(params, pk, sk):
            error = {"Code": "ProvisionedThroughputExceededException", "Message": "Rate of requests exceeds"}
            raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}, "UpdateItem")

    client.meta.events.register(UPDATE_ITEM, hook)
    return lambda: client.meta.events.unregister(UPDATE_ITEM, hook)
