"""A big request body, arriving in many messages, is held once while it is read: not as
the pieces and their join together (twice the body at the end); and the memory its parse
takes is reused from one request to the next, not mapped afresh each time."""

from __future__ import annotations

import asyncio
import platform
import tracemalloc
from pathlib import Path

import httpx
import orjson
import pytest

from router.http import malloctune
from router.http.body import BodyClock, BodyLimits, read_body
from router.testing import FakeUpstream, RouterProcess, chat_completion, json_reply

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


CONFIG = """
server: {{auth: none, max_body_bytes: 8388608}}
providers:
  up: {{plugin: openai, base_url: "{url}/v1", api_key: sk-upstream}}
models:
  big: {{targets: [{{provider: up, model: up-model}}]}}
"""


def _minor_faults(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc settings")
def test_4_mb_bodies_do_not_fault_in_fresh_memory_at_each_request(
    tmp_path: Path, fake_upstream: FakeUpstream
) -> None:
    """The parser's work area for a 4 MB body (48 MB) is above glibc's largest mmap
    threshold: mapped afresh, it cost about a thousand page faults a request (2 to 3 ms of
    kernel CPU); `serve` has the heap keep it (`router.http.malloctune`)."""
    config = tmp_path / "router.yaml"
    config.write_text(CONFIG.format(url=fake_upstream.url))
    fake_upstream.set_default("/v1/chat/completions", json_reply(chat_completion()))
    prompt = " ".join(f"word{i % 997}" for i in range(500_000))[:4_000_000]
    body = orjson.dumps({"model": "big", "messages": [{"role": "user", "content": prompt}]})
    with RouterProcess(config) as router, httpx.Client(base_url=router.url, timeout=30) as client:
        pid = router.process.pid
        for _ in range(3):  # the heap grows to its size once
            assert client.post("/v1/chat/completions", content=body).status_code == 200
        before = _minor_faults(pid)
        for _ in range(8):
            answer = client.post("/v1/chat/completions", content=body)
            assert answer.json()["choices"][0]["message"]["content"] == "Hello!"
        per_request = (_minor_faults(pid) - before) / 8
    assert per_request < 250, f"{per_request:.0f} page faults a request"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1048576"),
        ("MALLOC_MMAP_MAX_", "65536"),
        ("MALLOC_TRIM_THRESHOLD_", "1048576"),
    ],
)
def test_an_operators_own_malloc_settings_are_left_alone(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    assert malloctune.tune() is False
