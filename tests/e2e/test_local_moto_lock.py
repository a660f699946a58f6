"""The local stack's moto serialises DynamoDB calls, so that concurrent transactions lose nothing.

moto's TransactWriteItems deep-copies the table before writing and puts the copy back on a failed condition:
concurrent writes made it raise "dictionary changed size during iteration" (a 500) or erased them. These
tests start moto exactly as the local stack does (``LocalStack._start_moto``) and drive transactions that
fail their condition, transactions that succeed, and plain PutItems from several threads at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.config import Config
from lineage_intake_tools.local import moto_lock
from lineage_intake_tools.local.stack import LocalStack

THREADS = 4
TRANSACTIONS = 40
PUTS = 100


@dataclass
class Outcome:
    errors: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    cancelled_but_stored: list[str] = field(default_factory=list)


@pytest.fixture
def stack_moto() -> Iterator[LocalStack]:
    was_serialised = moto_lock.is_serialised()
    stack = LocalStack(port=0, env_file=None)
    stack._start_moto()
    stack.template.create(stack._session(), stack.endpoint_url)
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.CRITICAL)  # moto's 500s print whole tracebacks
    try:
        yield stack
    finally:
        werkzeug.setLevel(level)
        stack.moto.stop()
        if not was_serialised:  # leave moto as the other tests of this process found it
            moto_lock.unserialise_dynamodb()


def concurrent_writes(stack: LocalStack, round_id: int) -> Outcome:
    """Transactions (every other one cancelled by its ConditionCheck) and PutItems, all at once."""
    session = stack._session()
    table = stack.template.physical_name("LineageTable")
    outcome = Outcome()
    lock = threading.Lock()

    def client() -> Any:
        # No retries: a 500 from moto must show, not be hidden by the SDK's retry.
        config = Config(retries={"mode": "standard", "max_attempts": 1}, max_pool_connections=4)
        return session.client("dynamodb", endpoint_url=stack.endpoint_url, config=config)

    def item(pk: str) -> dict[str, Any]:
        return {"pk": {"S": pk}, "sk": {"S": "x"}}

    def transactions(worker: int) -> None:
        dynamodb = client()
        for i in range(TRANSACTIONS):
            pk = f"T{round_id}-{worker}-{i}"
            check = {"TableName": table, "Key": item("absent")}
            check["ConditionExpression"] = "attribute_exists(pk)" if i % 2 else "attribute_not_exists(pk)"
            try:
                dynamodb.transact_write_items(
                    TransactItems=[
                        {"Put": {"TableName": table, "Item": item(pk)}},
                        {"ConditionCheck": check},
                    ]
                )
                with lock:
                    outcome.written.append(pk)
            except dynamodb.exceptions.TransactionCanceledException:
                pass
            except Exception as exc:
                with lock:
                    outcome.errors.append(repr(exc)[:200])

    def puts(worker: int) -> None:
        dynamodb = client()
        for i in range(PUTS):
            pk = f"P{round_id}-{worker}-{i}"
            try:
                dynamodb.put_item(TableName=table, Item=item(pk))
                with lock:
                    outcome.written.append(pk)
            except Exception as exc:
                with lock:
                    outcome.errors.append(repr(exc)[:200])

    threads = [threading.Thread(target=transactions, args=(n,)) for n in range(THREADS)]
    threads += [threading.Thread(target=puts, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = set()
    for page in client().get_paginator("scan").paginate(TableName=table, ProjectionExpression="pk"):
        stored |= {i["pk"]["S"] for i in page["Items"]}
    outcome.lost = [pk for pk in outcome.written if pk not in stored]
    outcome.cancelled_but_stored = sorted(stored - set(outcome.written) - {"absent"})
    return outcome


def test_concurrent_transactions_on_the_stacks_moto_neither_fail_nor_erase_other_writes(
    stack_moto: LocalStack,
) -> None:
    # Given moto started as the local stack starts it (the lock installed)
    assert moto_lock.is_serialised()
    # When transactions (half of them cancelled) and PutItems run from 8 threads at once
    outcome = concurrent_writes(stack_moto, round_id=0)
    # Then no call failed, every acknowledged write is stored, and nothing of a cancelled transaction is
    assert outcome.errors == []
    assert outcome.lost == []
    assert outcome.cancelled_but_stored == []
    assert len(outcome.written) == THREADS * (TRANSACTIONS // 2 + PUTS)


def test_without_the_lock_the_same_workload_breaks_moto(stack_moto: LocalStack) -> None:
    # Given the same moto without the lock (what the stack ran before)
    moto_lock.unserialise_dynamodb()
    assert not moto_lock.is_serialised()
    # When the same workload runs (a few rounds at most: it is a race)
    outcomes = (concurrent_writes(stack_moto, round_id=r) for r in range(3))
    broken = next((o for o in outcomes if o.errors or o.lost), None)
    # Then moto failed a call or erased a write: the workload above does reproduce the race
    assert broken is not None, "the race did not show without the lock: moto may have fixed it, and moto_lock may go"


def test_a_transaction_whose_later_write_fails_leaves_its_earlier_writes_undone(stack_moto: LocalStack) -> None:
    # Given the stack's moto and a table with one item
    dynamodb = stack_moto._session().client("dynamodb", endpoint_url=stack_moto.endpoint_url)
    table = stack_moto.template.physical_name("LineageTable")
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "old"}, "sk": {"S": "x"}, "v": {"N": "1"}})
    # When a transaction overwrites it, then fails on an update that is invalid (an undefined value)
    with pytest.raises(dynamodb.exceptions.ClientError):  # moto answers 500 here, DynamoDB 400: either way
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": "old"}, "sk": {"S": "x"}, "v": {"N": "2"}}}},
                {"Put": {"TableName": table, "Item": {"pk": {"S": "new"}, "sk": {"S": "x"}}}},
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": "third"}, "sk": {"S": "x"}},
                        "UpdateExpression": "SET #a = :undefined",
                        "ExpressionAttributeNames": {"#a": "a"},
                    }
                },
            ]
        )
    # Then the table is as before: the overwrite undone, the new item absent
    items = dynamodb.scan(TableName=table)["Items"]
    assert items == [{"pk": {"S": "old"}, "sk": {"S": "x"}, "v": {"N": "1"}}]
