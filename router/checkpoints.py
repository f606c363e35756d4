"""Points in a config's load where a reload's paced compile may pause
(`router.graph.pacing.Paced`): the loops that run once per key, model or YAML mapping call
`checkpoint()`. A module of its own, importing nothing of the router's, so that the config,
limits, spend and graph modules can all call it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Protocol


class Pauser(Protocol):
    due: float  # `time.perf_counter()` at which the next pause is due

    def pause(self) -> None: ...


class _Running(threading.local):
    """The `Pauser` of the load running in this thread, if any. (A class attribute for the
    threads that never set one: `getattr` with a default would raise and catch inside.)"""

    current: Pauser | None = None


_running = _Running()


@contextlib.contextmanager
def pausing(pauser: Pauser) -> Iterator[None]:
    """Let `pauser` pause the load this thread runs, at its checkpoints."""
    _running.current = pauser
    try:
        yield
    finally:
        _running.current = None


def checkpoint() -> None:
    """Pause here if this thread's load is paced and its pause is due. Elsewhere (start-up,
    `check`, a load without pacing) a look-up and nothing more."""
    pauser = _running.current
    if pauser is not None and time.perf_counter() >= pauser.due:
        pauser.pause()
