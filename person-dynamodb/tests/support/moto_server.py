"""moto_server made fit for concurrency tests: the local DynamoDB the person-dynamodb tests run against.

moto's server is threaded, but its DynamoDB backend is not thread-safe, and two of its shortcuts break exactly
what the store's concurrency tests check:

* requests run without a lock, so two conditional writes can both pass their conditions, and
  `TransactWriteItems` deep-copies a table for rollback while other threads write to it ("dictionary changed
  size during iteration");
* a cancelled `TransactWriteItems` restores that whole-table copy, wiping writes that other requests committed in
  the meantime, and the copy costs time proportional to the table (hundreds of milliseconds per transaction
  at a few thousand items).

DynamoDB also makes `TransactWriteItems` idempotent per `ClientRequestToken` (for ten minutes): the SDK's retry of
a transaction whose response was lost (a timeout under load) succeeds without applying it twice. moto ignores the
token, so such a retry of a committed create fails its own "does not exist yet" condition — a false duplicate.

This launcher serialises DynamoDB actions with one lock (each request atomic, as DynamoDB guarantees; HTTP
handling stays threaded) and replaces the whole-table rollback with an undo log of the items the transaction
touched (same conditions, same cancellation reasons, same `ALL_OLD` items as moto's own implementation), and
remembers the client request tokens of committed transactions for ten minutes, as DynamoDB does.

Usage (same arguments as moto_server):  python3 moto_server.py -H 127.0.0.1 -p 5011
"""

import threading
import time
from typing import Any

import werkzeug.serving

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.responses import ActionResult, DynamoHandler
from moto.server import main

_LOCK = threading.RLock()
_call_action = DynamoHandler.call_action


def _serialised_call_action(self: Any) -> Any:
    with _LOCK:
        return _call_action(self)


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    undo: list[tuple[str, dict[str, Any], Any]] = []
    targets: set[tuple[str, str]] = set()
    errors: list[tuple[Any, Any, Any]] = []

    def rollback() -> None:
        for table_name, key, old in reversed(undo):
            if old is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, old)

    for item in transact_items:
        original_item = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            unique = (str(table_name), str(dict(sorted(key.items()))))
            if unique in targets:
                raise MultipleTransactionsException()
            targets.add(unique)

            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition = get_filter_expression(condition_expression, names, values)
                if not condition.expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)
            if op_type != "ConditionCheck":
                undo.append((table_name, key, current.to_json()["Attributes"] if current else None))
            if op_type == "Put":
                self.put_item(table_name, op["Item"])
            elif op_type == "Delete":
                self.delete_item(table_name, key)
            elif op_type == "Update":
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            rollback()
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))
        except Exception as e:  # noqa: BLE001 - reported as the item's cancellation reason, as moto does
            errors.append((type(e).__name__, str(e), original_item))

    if any(code is not None for code, _, _ in errors):
        rollback()
        raise TransactionCanceledException(errors)


_TOKEN_LIFETIME_SECONDS = 600.0
_committed_tokens: dict[str, float] = {}
_handler_transact_write_items = DynamoHandler.transact_write_items


def _idempotent_transact_write_items(self: Any) -> Any:
    # Runs under _LOCK (inside call_action), so the check and the record are atomic.
    token = self.body.get("ClientRequestToken")
    now = time.monotonic()
    committed = _committed_tokens.get(token) if token is not None else None
    if committed is not None and now - committed < _TOKEN_LIFETIME_SECONDS:
        return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
    result = _handler_transact_write_items(self)
    if token is not None:
        _committed_tokens[token] = now
        for old in [t for t, at in _committed_tokens.items() if now - at >= _TOKEN_LIFETIME_SECONDS]:
            del _committed_tokens[old]
    return result


DynamoHandler.call_action = _serialised_call_action
DynamoHandler.transact_write_items = _idempotent_transact_write_items
DynamoDBBackend.transact_write_items = _transact_write_items

# A burst of concurrent requests from two API processes opens more connections than werkzeug's default listen
# backlog (128) holds while the lock serialises the work; the kernel then drops connection attempts and the SDK
# reports "HTTP connect timeout". A deeper backlog (capped by net.core.somaxconn) keeps them queued instead.
werkzeug.serving.BaseWSGIServer.request_queue_size = 4096

if __name__ == "__main__":
    main()
