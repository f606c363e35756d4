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
    target without their price has no cost (-1, NULL in the database). (Every request with
    the ledger on makes one: `bench.instructions` counts what each line costs.)"""
    if call is None:  # refused before it named a model it may use
        return (seq, time.time(), record.request_id, record.key_name or "", "", "", "", "",
                0, 0, 0, 0, 0, record.outcome, record.status, record.error or "",
                seconds * 1000)  # fmt: skip
    budget = call.budget
    counted = budget.counted if budget is not None else None
    if counted is None:
        counted = _priced(record, call)
    prompt, cached, completion, cost = counted
    # (cost is -1 at least, the counts 0: any count past BIGGEST makes the sum reach it)
    if prompt + cached + completion + cost >= BIGGEST:  # an upstream's absurd usage
        prompt, cached, completion, cost = (
            min(n, BIGGEST) for n in (prompt, cached, completion, cost)
        )
    target = call.target
    return (seq, time.time(), record.request_id, record.key_name or "", call.route.name,
            target.runtime.name if target is not None else "",
            target.model if target is not None else "", call.op.name, len(call.attempts),
            prompt, cached, completion, cost, record.outcome, record.status,
            record.error or "", seconds * 1000)  # fmt: skip


def _priced(record: RequestRecord, call: Any) -> tuple[int, int, int, int]:
    """(prompt, cached, completion tokens, cost) of a request no budget counted: its usage
    (or a cut stream's estimate) at its target's price."""
    units, target = call.units, call.target
    prompt, cached, completion = used_tokens(record, call) or (0, 0, 0)
    cost = 0
    if prompt or completion or units:
        price = target.price if target is not None else None
        nanos = None
        if isinstance(price, Price):
            nanos = request_nanos(price, call.op.name, prompt, cached, completion, units)
        cost = -1 if nanos is None else nanos
    return prompt, cached, completion, cost


def used_tokens(record: RequestRecord, call: Any) -> tuple[int, int, int] | None:
    """(prompt, cached, completion) tokens a request used: its usage, else, for a stream cut
    before its usage came, an estimate from its prompt and what its upstreams produced;
    None when neither is known. The one rule for budgets' settling and the ledger's row."""
    usage = call.usage
    if usage is not None:
        return tokens(usage)
    if record.relay is not None:
        completion = estimate_tokens(relayed_chars(record.relay))
        return estimate_prompt_tokens(call.body), 0, completion
    return None


def relayed_chars(relay: Any) -> int:
    """Answer characters a stream's upstreams produced: its relay's, and those of the
    relays that continued it (`stream_recovery: continue`)."""
    chars = 0
    while relay is not None:
        chars += relay.completion_chars
        relay = relay.successor
    return chars
