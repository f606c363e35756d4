"""The bare relay: a few lines of Starlette forwarding the body with aiohttp, as the router does.

It is the floor for a Python relay on this stack: no auth, no routing, no logging.
Run: `BENCH_UPSTREAM=http://127.0.0.1:9001 uvicorn bench.relay:app --loop uvloop --http httptools`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:9001") + "/v1/chat/completions"
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench-upstream"}
session: aiohttp.ClientSession


async def chat(request: Request) -> Response:
    body = await request.body()
    if b'"stream":true' in body.replace(b" ", b""):
        upstream = await session.post(UPSTREAM, data=body, headers=HEADERS)

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.content.iter_any():
                    yield chunk
            finally:
                upstream.release()

        return StreamingResponse(relay(), upstream.status, media_type="text/event-stream")
    async with session.post(UPSTREAM, data=body, headers=HEADERS) as upstream:
        content = await upstream.read()
        return Response(content, upstream.status, media_type="application/json")


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    global session
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
    yield
    await session.close()


app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])], lifespan=lifespan)
