"""A process-wide setting changed while a load needs it, and put back when the last load that
needs it is done.

The collector's thresholds and the interpreter's switch interval belong to the process, not
to a thread. Two loads at once (two apps in one process, each reloading) each saving the value
they found and restoring it on the way out would leave the changed value for good when they
overlap: the later one found the earlier one's change. Here the first user saves the value
and the last one puts it back.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedSetting(Generic[T]):
    def __init__(self, read: Callable[[], T], write: Callable[[T], None]) -> None:
        self._read, self._write = read, write
        self._lock = threading.Lock()
        self._users = 0
        self._saved: T | None = None

    @contextlib.contextmanager
    def changed(self, change: Callable[[T], T]) -> Iterator[None]:
        """The setting as `change` makes it of the value before the first user, meanwhile."""
        with self._lock:
            if self._users == 0:
                self._saved = self._read()
                self._write(change(self._saved))
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0 and self._saved is not None:
                    self._write(self._saved)
                    self._saved = None
