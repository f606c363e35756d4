"""The `x-ratelimit-*` headers of an answer: the tightest request and token limits among what
a request acquired, formatted once per answer (raw byte pairs for the hot path)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from router.limits.policies import CONCURRENT, REQUESTS, TOKENS

if TYPE_CHECKING:
    from router.limits.admission import Ticket


def _reset(ms: int) -> str:
    """`ms` as seconds with at most three decimals, e.g. `1.5s`, `60s` (integer arithmetic:
    this is on every answer, and float rounding and `:g` formatting cost several times more)."""
    seconds, rest = divmod(max(0, ms), 1000)
    if not rest:
        return f"{seconds}s"
    return f"{seconds}.{str(1000 + rest)[1:].rstrip('0')}s"


def tightest(tickets: list[Ticket]) -> dict[str, tuple[int, int, int]]:
    """Per kind (requests, tokens): (remaining, limit, reset ms) of the tightest limit."""
    best: dict[str, tuple[int, int, int]] = {}
    if len(tickets) == 1 and tickets[0].pset.one_per_kind:  # no comparisons to make
        ticket = tickets[0]
        verdict = ticket.verdict
        if verdict is not None:
            for i, limit in enumerate(ticket.pset.limits):
                if limit.kind != CONCURRENT:
                    best[limit.kind] = (
                        max(0, limit.limit - verdict.used[i]),
                        limit.limit,
                        verdict.resets[i],
                    )
        return best
    for ticket in tickets:
        if ticket.verdict is None:
            continue
        for limit, used, reset in zip(
            ticket.pset.limits, ticket.verdict.used, ticket.verdict.resets, strict=True
        ):
            if limit.kind == CONCURRENT:
                continue
            entry = (max(0, limit.limit - used), limit.limit, reset)
            if limit.kind not in best or entry < best[limit.kind]:
                best[limit.kind] = entry
    return best


NAMES = ((REQUESTS, "requests"), (TOKENS, "tokens"))
_RAWNAMES = {
    kind: tuple(f"x-ratelimit-{what}-{name}".encode() for what in ("limit", "remaining", "reset"))
    for kind, name in NAMES
}


def rate_headers(tickets: list[Ticket]) -> dict[str, str]:
    """`x-ratelimit-*` for the tightest request and token limits among `tickets`."""
    best = tightest(tickets)
    headers = {}
    for kind, name in NAMES:
        if kind in best:
            remaining, ceiling, reset = best[kind]
            headers[f"x-ratelimit-limit-{name}"] = str(ceiling)
            headers[f"x-ratelimit-remaining-{name}"] = str(remaining)
            headers[f"x-ratelimit-reset-{name}"] = _reset(reset)
    return headers


def rate_header_pairs(tickets: list[Ticket]) -> list[tuple[bytes, bytes]]:
    """`rate_headers` as the byte pairs an answer's raw headers take (same order)."""
    return header_pairs(tightest(tickets))


def header_pairs(best: dict[str, tuple[int, int, int]]) -> list[tuple[bytes, bytes]]:
    pairs = []
    for kind, _ in NAMES:
        if kind in best:
            remaining, ceiling, reset = best[kind]
            limit_name, remaining_name, reset_name = _RAWNAMES[kind]
            pairs += [
                (limit_name, _ascii(ceiling)),
                (remaining_name, str(remaining).encode()),
                (reset_name, _reset_bytes(reset)),
            ]
    return pairs


_ASCII: dict[int, bytes] = {}
_last_reset: tuple[int, bytes] = (-1, b"")


def _ascii(number: int) -> bytes:
    """A limit's figure as header bytes; limits come from the config, so few and cached."""
    out = _ASCII.get(number)
    if out is None:
        if len(_ASCII) > 1024:
            _ASCII.clear()
        out = _ASCII[number] = str(number).encode()
    return out


def _reset_bytes(ms: int) -> bytes:
    """`_reset(ms)` encoded; requests answered in the same millisecond share one."""
    global _last_reset
    last_ms, text = _last_reset
    if ms != last_ms:
        text = _reset(ms).encode()
        _last_reset = (ms, text)
    return text
