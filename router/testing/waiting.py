"""Waiting in tests for something to happen, with a deadline instead of a guessed sleep.

A fixed sleep either wastes time on a quick machine or is too short on a loaded one; a poll
returns as soon as the condition holds and fails, saying what it waited for, only when it
never does.
"""

from __future__ import annotations

import time
from collections.abc import Callable

POLL = 0.02  # seconds between checks: short against the waits tests make, light on the CPU


def wait_until(condition: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    """Return once `condition()` is true; raise `AssertionError(what)` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} (waited {timeout} s)")
        time.sleep(POLL)
