"""The ledger row of a finished request, built when it ends.

The row holds references the request path already has (names, the request id) and the
figures its budgets' settling counted (or, without budgets, its usage priced at its target's
compiled price): one tuple, in `ROW_COLUMNS` order, that the writer binds as it is. Built once
here, where an earlier version queued a tuple of references and the writer made a second
one of it: two tuples and a call per row more, for work that costs the same in either place
(the request's answer has gone out before its row is made).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from router.spend.prices import Price, request_nanos, tokens
from router.upstream.usage import estimate_prompt_tokens, estimate_tokens

if TYPE_CHECKING:
    from router.observability.access import RequestRecord

# One row: (seq, at, request_id, key_name, model, provider, upstream_model, operation,
#  attempts, prompt_tokens, cached_tokens, completion_tokens, cost_nanos, outcome, status,
#  error, latency_ms), `NULL_AS` standing for NULL.
Entry = tuple[Any, ...]

# The ledger's columns, in the order of a row.
COLUMNS = (
    "replica",
    "seq",
    "at",
    "request_id",
    "key_name",
    "model",
    "provider",
    "upstream_model",
    "operation",
    "attempts",
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    "cost_nanos",
    "currency",
    "outcome",
    "status",
    "error",
    "latency_ms",
)

# Columns that hold the same value in every row a ledger writes (its replica id and its
# currency): the stores write them as constants (`Store.write`), not as a value per row.
PER_LEDGER = ("replica", "currency")
# A row's values, in this order: the other columns.
ROW_COLUMNS = tuple(column for column in COLUMNS if column not in PER_LEDGER)


# The largest a ledger's INTEGER column holds (SQLite's and PostgreSQL's BIGINT): a row
# with a larger count (usage an upstream reported wrongly, and its cost) holds this instead,
# where the database would refuse the row, and with it the batch and every row after it.
BIGGEST = 2**63 - 1

# Nullable columns and what stands for NULL in a row: the stores' INSERT turns it back into
# NULL (`NULLIF`). Binding Python's None costs the sqlite3 module a failed adapter look-up
# per value, a third of its binding work; a string or an int binds directly.
NULL_AS = {
    "key_name": "",
    "model": "",
    "provider": "",
    "upstream_model": "",
    "operation": "",
    "cost_nanos": -1,
    "error": "",
}


def insert_value(column: str, placeholder: str) -> str:
    """A column's value in an INSERT: the placeholder, NULL where it holds NULL's stand-in."""
    if column not in NULL_AS:
        return placeholder
    null = NULL_AS[column]
    return f"NULLIF({placeholder}, {null!r})" if null == "" else f"NULLIF({placeholder}, {null})"


def entry(seq: int, record: RequestRecord, call: Any, seconds: float) -> Entry:
    """The ledger's row for one finished request (`call`: its `router.routing.dispatch.Call`).
    A request that used no tokens (and no metered units) costs 0; one that used them on a
    target without their price has no cost (-1, NULL in the database)."""
    latency = int(seconds * 1_000_000 + 0.5) / 1000  # ms to 3 decimals; `round` is slower
    if call is None:  # refused before it named a model it may use
        key = record.key_name
        return (seq, time.time(), record.request_id, key or "", "", "", "", "", 0, 0, 0, 0, 0,
                record.outcome, record.status, record.error or "", latency)  # fmt: skip
    target, budget = call.target, call.budget
    if target is None:
        provider = upstream = ""
        price = None
    else:
        provider, upstream, price = target.runtime.name, target.model, target.price
    counted = budget.counted if budget is not None else None
    if counted is not None:  # what settling the request's budgets counted: tokens and cost
        prompt, cached, completion, cost = counted
    else:
        usage, units = call.usage, call.units
        if usage is not None:
            prompt, cached, completion = tokens(usage)
        elif record.relay is not None:  # a stream cut before its usage came
            prompt, cached = estimate_prompt_tokens(call.body), 0
            completion = estimate_tokens(relayed_chars(record.relay))
        else:
            prompt = cached = completion = 0
        cost = 0
        if prompt or completion or units:
            nanos = None
            if isinstance(price, Price):
                nanos = request_nanos(price, call.op.name, prompt, cached, completion, units)
            cost = -1 if nanos is None else nanos
    if max(prompt, cached, completion, cost) > BIGGEST:  # an upstream's absurd usage
        prompt, cached, completion, cost = (
            min(n, BIGGEST) for n in (prompt, cached, completion, cost)
        )
    key, error = record.key_name, record.error
    return (seq, time.time(), record.request_id, key or "", call.route.name, provider,
            upstream, call.op.name, len(call.attempts), prompt, cached, completion, cost,
            record.outcome, record.status, error or "", latency)  # fmt: skip


def relayed_chars(relay: Any) -> int:
    """Answer characters a stream's upstreams produced: its relay's, and those of the
    relays that continued it (`stream_recovery: continue`)."""
    chars = 0
    while relay is not None:
        chars += relay.completion_chars
        relay = relay.successor
    return chars
