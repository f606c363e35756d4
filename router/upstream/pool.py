"""The keep-alive connections to one upstream origin (scheme, host, port), at most `limit` open.

Connections are lent one exchange at a time, the most recently used first (its socket is
the least likely to have been closed by the upstream while idle), and one idle for longer
than `KEEP_IDLE` seconds is closed rather than lent. Servers close idle connections after a
while (uvicorn after 5 s, nginx after 75 s): a connection they closed is seen closed and
passed over, and a request written just as they close it is sent again by the transport. A
request beyond `limit` waits for a connection to come back, in order of arrival.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque

from router.upstream.connection import DEFAULT_MAX_ANSWER_BYTES, Connection

KEEP_IDLE = 15.0  # seconds an idle connection is kept (as aiohttp's client did)


class Pool:
    """Connections to one origin (see the module's docstring)."""

    def __init__(
        self,
        host: str,
        port: int,
        tls: ssl.SSLContext | None,
        limit: int,
        max_answer: int = DEFAULT_MAX_ANSWER_BYTES,
    ) -> None:
        self.host, self.port, self.tls, self.limit = host, port, tls, max(1, limit)
        self.max_answer = max_answer  # bytes of an answer read whole, at most
        self.idle: list[Connection] = []
        self.open = 0  # connections open or opening
        self._waiters: deque[asyncio.Future[Connection | None]] = deque()
        self._closing = False

    async def acquire(self, connect: float) -> tuple[Connection, bool]:
        """A connection for one exchange, and whether it served one before; a new one is
        connected within `connect` seconds (waiting for a free slot included)."""
        idle = self.idle
        if idle:
            now = asyncio.get_running_loop().time()
            while idle:
                conn = idle.pop()
                if not conn.closed and now - conn.idle_since < KEEP_IDLE:
                    return conn, True
                conn.close()
        async with asyncio.timeout(connect):
            while self.open >= self.limit:
                waiter: asyncio.Future[Connection | None] = (
                    asyncio.get_running_loop().create_future()
                )
                self._waiters.append(waiter)
                try:
                    handed = await waiter
                except BaseException:
                    if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                        self.release(waiter.result())  # type: ignore[arg-type]
                    raise
                if handed is not None:
                    return handed, True
            self.open += 1
            try:
                return await self._connect(), False
            except BaseException:
                self.open -= 1
                self._wake_one(None)
                raise

    async def _connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(
            lambda: Connection(self),
            self.host,
            self.port,
            ssl=self.tls,
            server_hostname=self.host if self.tls is not None else None,
        )
        return conn

    def release(self, conn: Connection) -> None:
        """`conn` served its exchange and can serve another: to a waiting request, or idle."""
        if self._closing:
            conn.close()
            return
        if self._wake_one(conn):
            return
        conn.idle_since = asyncio.get_running_loop().time()
        self.idle.append(conn)

    def lost(self, conn: Connection) -> None:
        """`conn` closed (either side): its slot is free."""
        self.open -= 1
        if conn in self.idle:
            self.idle.remove(conn)
        self._wake_one(None)

    def _wake_one(self, conn: Connection | None) -> bool:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    def close(self) -> None:
        self._closing = True
        for conn in list(self.idle):
            conn.close()
        self.idle.clear()
