"""The local stand-in for an SQS event source mapping (the START grace queue, docs/merge.md).

Like Lambda's SQS poller: long-polls the queue, hands the function a batch in Lambda's SQS event shape, and deletes
the messages it did not report in ``batchItemFailures``; a message it failed becomes visible again after the
queue's visibility timeout (moto applies ``DelaySeconds`` and visibility as SQS does). Costs nothing while the
queue is empty but its long poll, like the real mapping.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from typing import Any

#: Long-poll wait of each ReceiveMessage (SQS allows up to 20 s; short, so that ``stop`` returns quickly).
WAIT_SECONDS = 1


def sqs_event(messages: list[Mapping[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """Messages of ReceiveMessage as Lambda delivers them to a function (``Records`` of ``aws:sqs``)."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes", {})),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


class QueuePoller:
    """Polls one queue and invokes one function, in a background thread (``start``/``stop``)."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        region: str,
        batch_size: int,
        invoke: Callable[[dict[str, Any]], Any],
        log: Callable[[str, str, dict[str, Any]], None],
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.region = region
        self.batch_size = max(1, min(10, batch_size))
        self.invoke = invoke
        self.log = log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"queue-poller-{self.queue_url.rsplit('/', 1)[-1]}")
        self._thread.daemon = True
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the polling thread to stop after its current call, without waiting (``stop`` waits)."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # keep polling: the stack must survive a bad batch or a moto hiccup
                if self._stop.is_set():
                    break  # the stack is stopping: its functions and moto are going away
                self.log("ERROR", "queue poll failed", {"queue": self.queue_url, "error": repr(exc)})
                self._stop.wait(1.0)

    def poll_once(self) -> int:
        """One ReceiveMessage and, when it returns messages, one invocation. Returns the messages handled."""
        answer = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size, WaitTimeSeconds=WAIT_SECONDS
        )
        messages = answer.get("Messages", [])
        if not messages:
            return 0
        result = self.invoke(sqs_event(messages, self.queue_arn, self.region))
        failed = {f.get("itemIdentifier") for f in (result or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
            ]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        if failed:
            self.log("WARNING", "queue messages failed", {"queue": self.queue_url, "failed": len(failed)})
        return len(messages)
