"""A big request body, arriving in many messages, is held once while it is read: not as
the pieces and their join together (twice the body at the end)."""

from __future__ import annotations

import asyncio
import tracemalloc

from router.http.body import BodyClock, BodyLimits, read_body

PIECE = 65_536  # what uvicorn hands over per message at most


def test_a_body_in_many_messages_is_held_about_once() -> None:
    pieces = 64  # 4 MiB

    async def main() -> tuple[int, int]:
        left = pieces

        async def receive() -> dict[str, object]:
            nonlocal left
            left -= 1
            return {"type": "http.request", "body": bytes(PIECE), "more_body": left > 0}

        limits = BodyLimits(8 * 2**20, 30.0, 60.0, 128)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            raw = await read_body(receive, {}, limits, BodyClock())
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert raw == bytes(PIECE * pieces)
        return len(raw), peak

    size, peak = asyncio.run(main())
    assert peak < 1.3 * size, f"peak {peak / size:.2f}x the body"
