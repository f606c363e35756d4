"""The router the operations' tests share (one per test module): `llm-switchyard serve` with
two OpenAI-compatible providers on a fake upstream, and per operation a model that falls
over from one to the other, one with a single target and, for images and audio, one with a
limit in the operation's own unit."""

from __future__ import annotations

import wave
from pathlib import Path

import openai
import pytest

from router.testing import FakeUpstream, Reply, RouterProcess, closed_after_test
from router.testing.media import openai_error

OPS = (
    "images",
    "image_edits",
    "image_variations",
    "speech",
    "transcriptions",
    "translations",
    "moderations",
    "rerank",
)
PATHS = {
    "images": "/images/generations",
    "image_edits": "/images/edits",
    "image_variations": "/images/variations",
    "speech": "/audio/speech",
    "transcriptions": "/audio/transcriptions",
    "translations": "/audio/translations",
    "moderations": "/moderations",
    "rerank": "/rerank",
}
CONFIG = """
server:
  auth: none
providers:
  primary: {{plugin: openai, base_url: "{url}/primary/v1", api_key: sk-primary}}
  backup: {{plugin: openai, base_url: "{url}/backup/v1", api_key: sk-backup}}
models:
{models}
rate_limits:
  two-images: {{tokens_per_minute: 2000}}
  three-seconds: {{tokens_per_minute: 3}}
keys: {{}}
"""
RETRIES = "{attempts: 1, backoff_initial: 0.05, backoff_max: 0.05, max_retry_after: 5}"


def models() -> str:
    lines = []
    for op in OPS:
        lines += [
            f"  {op}-fallback:",
            "    targets: [{provider: primary, model: up-a}, {provider: backup, model: up-b}]",
            f"    retries: {RETRIES}",
            f"  {op}-only:",
            "    targets: [{provider: primary, model: up-a}]",
            "    retries: {attempts: 0}",
        ]
    lines += [
        "  images-limited:",
        "    targets: [{provider: primary, model: up-a}]",
        "    rate_limits: [two-images]",
        "  image_edits-limited:",
        "    targets: [{provider: primary, model: up-a}]",
        "    rate_limits: [two-images]",
        "  image_edits-json-limited:",
        "    targets: [{provider: primary, model: up-a}]",
        "    rate_limits: [two-images]",
        "  image_variations-limited:",
        "    targets: [{provider: primary, model: up-a}]",
        "    rate_limits: [two-images]",
        "  transcriptions-limited:",
        "    targets: [{provider: primary, model: up-a}]",
        "    rate_limits: [three-seconds]",
        "  translations-limited:",
        "    targets: [{provider: primary, model: up-a}]",
        "    rate_limits: [three-seconds]",
    ]
    return "\n".join(lines)


# The SDK marks `audio.translations` and `images.create_variation` deprecated; OpenAI still
# serves them, and so does the router.
SDK_DEPRECATED = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")


class Served:
    def __init__(self, tmp: Path) -> None:
        self.upstream = FakeUpstream().start()
        config = tmp / "router.yaml"
        config.write_text(CONFIG.format(url=self.upstream.url, models=models()))
        self.router = RouterProcess(config).start()
        self.client = closed_after_test(
            openai.OpenAI(base_url=self.router.base_url, api_key="x", max_retries=0, timeout=20)
        )
        self.wav = tmp / "speech.wav"
        write_wav(self.wav, seconds=2.0)

    def stop(self) -> None:
        self.router.stop()
        self.upstream.stop()

    def requests(self, provider: str, op: str) -> list:
        return self.upstream.received(f"/{provider}/v1{PATHS[op]}")

    def limited(self, op: str, reply: Reply) -> None:
        """The primary answers `op` with OpenAI's 429 (a Retry-After longer than the route
        waits), then `reply` from the backup."""
        self.upstream.add(f"/primary/v1{PATHS[op]}", openai_error(429, retry_after=30))
        self.upstream.add(f"/backup/v1{PATHS[op]}", reply)


def write_wav(path: Path, seconds: float, rate: int = 16_000) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x01\x00" * int(seconds * rate))
