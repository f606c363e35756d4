"""What a finished request leaves for the ledger, and the row the writer makes of it.

The request path builds one flat tuple of references it already holds (names, the usage
object, the target's compiled price) and appends it to the ledger's queue: no formatting,
no arithmetic, no I/O. The writer task turns each into a database row: tokens, cost,
currency, milliseconds.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from router.spend.prices import Price, request_nanos, tokens
from router.upstream.usage import estimate_prompt_tokens, estimate_tokens

if TYPE_CHECKING:
    from router.observability.access import RequestRecord

# (seq, at, request_id, key, model, provider, upstream_model, operation, attempts, usage,
#  estimate, price, outcome, status, error, seconds, units); `estimate` is (prompt tokens,
#  answer characters) for a stream that ended before its upstream reported usage, `units`
#  what a metered operation's answer counts (`Call.units`). When budgets applied, `usage` is
#  what settling them counted: (prompt, cached, completion, cost), the row's own figures,
#  computed once for both.
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
    """The ledger's tuple for one finished request (`call`: its `router.routing.dispatch.Call`)."""
    if call is None:  # refused before it named a model it may use
        return (
            seq,
            time.time(),
            record.request_id,
            record.key_name,
            None,
            None,
            None,
            None,
            0,
            None,
            None,
            None,
            record.outcome,
            record.status,
            record.error,
            seconds,
            0,
        )
    target, usage, budget = call.target, call.usage, call.budget
    estimate = None
    if budget is not None and budget.counted is not None:
        usage = budget.counted  # what settling its budgets counted: tokens and cost
    elif usage is None and record.relay is not None:  # a stream cut before its usage came
        estimate = (estimate_prompt_tokens(call.body), relayed_chars(record.relay))
    if target is None:
        provider = upstream = price = None
    else:
        provider, upstream, price = target.runtime.name, target.model, target.price
    return (
        seq,
        time.time(),
        record.request_id,
        record.key_name,
        call.route.name,
        provider,
        upstream,
        call.op.value,
        len(call.attempts),
        usage,
        estimate,
        price,
        record.outcome,
        record.status,
        record.error,
        seconds,
        call.units,
    )


def relayed_chars(relay: Any) -> int:
    """Answer characters a stream's upstreams produced: its relay's, and those of the
    relays that continued it (`stream_recovery: continue`)."""
    chars = 0
    while relay is not None:
        chars += relay.completion_chars
        relay = relay.successor
    return chars


def row(item: Entry) -> tuple[Any, ...]:
    """The database row for a queued entry, in `ROW_COLUMNS` order, `NULL_AS` standing for NULL.
    A request that used no tokens (and no metered units) costs 0; one that used them on a
    target without their price has no cost (NULL)."""
    (
        seq,
        at,
        request_id,
        key,
        model,
        provider,
        upstream,
        operation,
        attempts,
        usage,
        estimate,
        price,
        outcome,
        status,
        error,
        seconds,
        units,
    ) = item
    if type(usage) is tuple:  # counted when the request's budgets were settled
        prompt, cached, completion, cost = usage
    else:
        if usage is not None:
            prompt, cached, completion = tokens(usage)
        elif estimate is not None:
            prompt, cached, completion = estimate[0], 0, estimate_tokens(estimate[1])
        else:
            prompt = cached = completion = 0
        cost = 0
        if prompt or completion or units:
            nanos = None
            if isinstance(price, Price):
                nanos = request_nanos(price, operation, prompt, cached, completion, units)
            cost = -1 if nanos is None else nanos
    if max(prompt, cached, completion, cost) > BIGGEST:  # an upstream's absurd usage
        prompt, cached, completion, cost = (
            min(n, BIGGEST) for n in (prompt, cached, completion, cost)
        )
    return (
        seq,
        at,
        request_id,
        key or "",
        model or "",
        provider or "",
        upstream or "",
        operation or "",
        attempts,
        prompt,
        cached,
        completion,
        cost,
        outcome,
        status,
        error or "",
        int(seconds * 1_000_000 + 0.5) / 1000,  # ms to 3 decimals; `round` formats a string
    )
