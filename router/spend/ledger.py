"""The usage ledger: a bounded queue filled by finished requests, emptied by one writer task.

A request's last step (`RequestRecord.finish`) appends its row (`router.spend.entry`) to
the queue, which never blocks and never fails: when the database is slow or down, rows
wait; beyond `queue_size` the oldest are dropped, counted and logged. The writer task
writes them in batches (`batch_size`, or whatever is queued once
the oldest row has waited `flush_interval`: a write is a transaction and a hand-over to a
thread, whose cost the batch's rows share), retrying a failed batch with backoff until the
database answers. On shutdown it goes on writing for up to `shutdown_flush` seconds.

Each process is a replica with its own id, and numbers its rows: (replica, seq) is a row's
key, so a batch retried after a lost answer is not written twice and two requests never
merge into one row.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import socket
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from router.observability import logs, metrics
from router.spend.config import LedgerConfig, SpendConfig
from router.spend.entry import Entry, entry
from router.spend.open import open_store
from router.spend.stores import Store

if TYPE_CHECKING:
    from router.observability.access import RequestRecord

log = logs.get_logger("router.ledger")

rows_written = metrics.Counter(
    "llm_router.ledger.rows_written", "Usage rows written to the ledger's database.", ()
)
rows_dropped = metrics.Counter(
    "llm_router.ledger.rows_dropped",
    "Usage rows never written: the queue was full while the database was slow or down, or "
    "the router stopped before they could be written.",
    (),
)
write_errors = metrics.Counter(
    "llm_router.ledger.write_errors",
    "Failed writes to the ledger's database; the batch is retried.",
    (),
)
queue_depth = metrics.Gauge(
    "llm_router.ledger.queue_depth", "Usage rows waiting to be written to the ledger."
)

BACKOFF_FIRST = 0.1  # seconds before retrying a failed write; doubles up to BACKOFF_MAX
BACKOFF_MAX = 2.0
WARN_EVERY = 10.0  # seconds between two warnings of the same kind


def replica_id() -> str:
    """This process's name in the ledger: host, pid and a random part (every container's
    router may be pid 1 on a host called `router`)."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{os.urandom(3).hex()}"


class Ledger:
    """One process's ledger writer. `put` is for the request path; the rest is not."""

    def __init__(self, config: LedgerConfig, currency: str, store: Store | None = None) -> None:
        self.config = config
        self.currency = currency
        self.store = store or open_store(config.url, config.timeout)
        self.replica = replica_id()
        self._per_ledger = (self.replica, currency)  # the values of `PER_LEDGER`
        self.written = self.dropped = 0
        self._queue: deque[Entry] = deque()
        self._seq = itertools.count(1)
        self._bound = config.queue_size
        self._batch = config.batch_size
        self._pending: list[tuple[Any, ...]] | None = None  # the batch being written
        self._pending_first = 0  # its first seq
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()  # set (and replaced) after each batch written
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._hurry = 0  # rows up to this seq are written without waiting (`flush`)
        self._closed = False
        self._unlogged_drops = 0
        self._last_drop_warning = -math.inf
        self._source = lambda: len(self._queue) + len(self._pending or ())

    # -- the request path ---------------------------------------------------------------------

    def put(self, record: RequestRecord, call: Any, seconds: float) -> None:
        """Queue one finished request's row; never blocks, never raises for the database."""
        queue = self._queue
        if self._closed:
            self._drop(1)
            return
        if len(queue) >= self._bound:
            queue.popleft()
            self._drop(1)
        try:
            made = entry(next(self._seq), record, call, seconds)
        except Exception as exc:  # a bug: lose the row, not the request's end
            log.error("ledger_row_error", request_id=record.request_id, exc_info=exc)
            self._drop(1)
            return
        queue.append(made)
        if len(queue) == self._batch:
            self._wake.set()

    def _drop(self, count: int) -> None:
        self.dropped += count
        self._unlogged_drops += count
        rows_dropped.add(count)
        self._warn_drops()

    def _warn_drops(self, now: bool = False) -> None:
        if not self._unlogged_drops:
            return
        at = time.monotonic()
        if now or at - self._last_drop_warning >= WARN_EVERY:
            log.warning(
                "ledger_rows_dropped",
                rows=self._unlogged_drops,
                total=self.dropped,
                queue_size=self._bound,
                ledger=self.store.where,
            )
            self._unlogged_drops = 0
            self._last_drop_warning = at

    # -- the writer ---------------------------------------------------------------------------

    async def start(self) -> None:
        rows_dropped.add(0)  # the series exists from the start, for alerts on its rate
        rows_written.add(0)
        queue_depth.sources.append(self._source)
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="llm-switchyard-ledger")

    async def _run(self) -> None:
        backoff = BACKOFF_FIRST
        failing_since: float | None = None
        last_warning = -math.inf
        try:
            await self.store.open()
        except Exception as exc:
            failing_since = last_warning = time.monotonic()
            self._warn_failure(exc, "ledger_unavailable")
        while True:
            self._warn_drops()
            if self._pending is None:
                queue = self._queue
                if not queue:
                    if self._closing:
                        return
                    await self._idle(self.config.flush_interval)
                    continue
                if len(queue) < self._batch and not self._closing and queue[0][0] > self._hurry:
                    # Not a full batch: wait for one, or until the oldest row has waited
                    # `flush_interval` (after a write too: not a batch of what came meanwhile).
                    interval = self.config.flush_interval
                    wait = min(queue[0][1] + interval - time.time(), interval)  # (clock steps)
                    if wait > 0:
                        await self._idle(wait)
                        continue
                self._take_batch()
                continue
            try:
                await self._write_pending()
            except Exception as exc:
                write_errors.add(1)
                now = time.monotonic()
                if failing_since is None or now - last_warning >= WARN_EVERY:
                    failing_since = failing_since or now
                    last_warning = now
                    self._warn_failure(exc, "ledger_write_failed")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            self._pending = None
            backoff = BACKOFF_FIRST
            if failing_since is not None:
                log.info(
                    "ledger_write_recovered",
                    ledger=self.store.where,
                    seconds=round(time.monotonic() - failing_since, 1),
                    rows_waiting=len(self._queue),
                )
                failing_since = None
            progress, self._progress = self._progress, asyncio.Event()
            progress.set()

    async def _write_pending(self) -> None:
        """Write the pending batch; raises when the database failed. A batch the database
        refuses for what some row holds is written row by row, and only the rows it
        refuses are lost (counted and logged): retrying the batch would fail forever and
        hold back every row queued after it."""
        rows = self._pending
        assert rows is not None
        try:
            await self.store.write(rows, self._per_ledger)
        except Exception as exc:
            if not self.store.refuses(exc):
                raise
            await self._write_apart(rows)
            return
        self._wrote(len(rows))

    async def _write_apart(self, rows: list[tuple[Any, ...]]) -> None:
        for i, one in enumerate(rows):
            try:
                await self.store.write([one], self._per_ledger)
            except Exception as exc:
                if not self.store.refuses(exc):
                    self._pending = rows[i:]  # the database failed meanwhile: retried later
                    self._pending_first = one[0]
                    raise
                log.error(
                    "ledger_row_refused",
                    ledger=self.store.where,
                    seq=one[0],
                    request_id=one[2],
                    error=f"{type(exc).__name__}: {exc}",
                )
                self._drop(1)
                continue
            self._wrote(1)

    def _wrote(self, count: int) -> None:
        self.written += count
        rows_written.add(count)

    async def _idle(self, seconds: float) -> None:
        """Wait for a full batch (or a flush), or `seconds` (a timer, not `wait_for`: no task
        and no cancellation each time)."""
        self._wake.clear()
        timer = asyncio.get_running_loop().call_later(seconds, self._wake.set)
        try:
            await self._wake.wait()
        finally:
            timer.cancel()

    def _take_batch(self) -> None:
        """Move up to `batch_size` queued rows into the batch being written."""
        queue = self._queue
        self._pending_first = queue[0][0]
        popleft = queue.popleft
        self._pending = [popleft() for _ in range(min(self._batch, len(queue)))]

    def _warn_failure(self, exc: Exception, event: str) -> None:
        log.warning(
            event,
            ledger=self.store.where,
            error=f"{type(exc).__name__}: {exc}",
            rows_waiting=self._source(),
            retry="with backoff; requests are served meanwhile",
        )

    async def flush(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds until every row queued so far is written (or
        dropped); whether it was."""
        target = self._queue[-1][0] if self._queue else None
        if target is None:
            target = self._pending_first if self._pending is not None else None
        if target is None:
            return True
        self._hurry = max(self._hurry, target)  # written now, not when a batch is full
        self._wake.set()
        deadline = time.monotonic() + timeout
        while not self._flushed(target):
            left = deadline - time.monotonic()
            if left <= 0 or self._task is None or self._task.done():
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), left)
        return True

    def _flushed(self, seq: int) -> bool:
        queue = self._queue
        return (not queue or queue[0][0] > seq) and (
            self._pending is None or self._pending_first > seq
        )

    async def stop(self) -> None:
        """Write what is queued, for up to `shutdown_flush` seconds, then close."""
        self._closing = True
        self._wake.set()
        task = self._task
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=self.config.shutdown_flush)
            if not done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._closed = True
        lost = self._source()
        self._queue.clear()
        self._pending = None
        if lost:
            self._drop(lost)
        self._warn_drops(now=True)
        with contextlib.suppress(ValueError):
            queue_depth.sources.remove(self._source)
        try:
            await self.store.close()
        except Exception as exc:
            log.warning("ledger_close_failed", ledger=self.store.where, error=str(exc))


def open_ledger(spend: SpendConfig) -> Ledger | None:
    """The ledger a config asks for (not started), or None when `spend.ledger` is unset."""
    if spend.ledger is None:
        return None
    return Ledger(spend.ledger, spend.currency)
