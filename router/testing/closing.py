"""Clients a test opens are closed when it ends.

An SDK or httpx client left open keeps its pooled connections until the garbage collector
gets to it, which warns (`ResourceWarning`, an error in this project's tests) at whatever
test happens to be running then. `closed_after_test(client)` hands the client back and
closes it at the end of the test that made it (or of the session, for a client a wider
fixture made), after the test's routers have stopped.
"""

from __future__ import annotations

from typing import Protocol, TypeVar


class _Closable(Protocol):
    def close(self) -> object: ...


C = TypeVar("C", bound=_Closable)

_open: list[_Closable] = []


def closed_after_test(client: C) -> C:
    """`client`, to be closed when the test (or the fixture scope) that made it ends."""
    _open.append(client)
    return client


def opened() -> int:
    """A mark: how many clients are registered now."""
    return len(_open)


def close_since(mark: int = 0) -> None:
    """Close every client registered after `mark`, newest first."""
    while len(_open) > mark:
        _open.pop().close()
