"""Prices per image (made or edited), per second of audio transcribed (or translated) and per
million characters spoken, through `llm-switchyard serve` with fake upstreams and the
`openai` SDK: what a request of such an operation costs reaches its ledger row, the money
budgets (reserved at admission, reconciled with what the answer holds, shown in
`x-budget-*`) and `llm-switchyard usage`."""

from __future__ import annotations

import contextlib
import json
import struct
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from router.testing import FakeUpstream, Reply, RouterProcess, closed_after_test
from router.testing.ledger import wait_for_rows
from router.testing.media import PNG, image_reply, speech_reply, transcription_reply
from router.testing.server import cli_command

CONFIG = """
server: {{auth: none, watch_config: false}}
spend:
  ledger: {{url: "{ledger}", flush_interval: 0.05}}
budgets:
  pictures: {{amount: 0.10, period: day}}
  edits: {{amount: 0.10, period: day}}
providers:
  up: {{plugin: openai, base_url: "{upstream}/v1", api_key: sk-up}}
models:
  draw:
    targets: [{{provider: up, model: img, price: {{per_image: 0.04}}}}]
    retries: {{attempts: 0}}
    budgets: [pictures]
  edit:
    targets: [{{provider: up, model: img, price: {{per_image: 0.04}}}}]
    budgets: [edits]
  vary: {{targets: [{{provider: up, model: img, price: {{per_image: 0.04}}}}], budgets: [edits]}}
  listen: {{targets: [{{provider: up, model: whisper, price: {{per_audio_second: 0.0001}}}}]}}
  translate: {{targets: [{{provider: up, model: whisper, price: {{per_audio_second: 0.0001}}}}]}}
  speak: {{targets: [{{provider: up, model: tts, price: {{per_million_characters: 15}}}}]}}
  tokens-only: {{targets: [{{provider: up, model: img2, price: {{input: 1, output: 1}}}}]}}
"""


def _wav(seconds: int, byte_rate: int = 16_000) -> bytes:
    """A RIFF/WAVE file of `seconds` of silence (8 kHz, 16-bit mono)."""
    data = bytes(seconds * byte_rate)
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, byte_rate // 2, byte_rate, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + len(data))
        + b"WAVEfmt "
        + fmt
        + b"data"
        + (struct.pack("<I", len(data)) + data)
    )


def _costs(rows: list[dict[str, Any]]) -> list[tuple[str, str, int, int]]:
    """(model, operation, status, cost in nanos) of each ledger row, in the order written."""
    return [
        (r["model"], r["operation"], r["status"], r["cost_nanos"])
        for r in sorted(rows, key=lambda r: r["seq"])
    ]


@contextlib.contextmanager
def _priced(tmp_path: Path) -> Iterator[tuple[FakeUpstream, RouterProcess, openai.OpenAI, str]]:
    """`CONFIG` served, with its ledger in `tmp_path`, in front of a fake upstream."""
    ledger = f"sqlite:///{tmp_path}/usage.db"
    with FakeUpstream() as upstream:
        path = tmp_path / "router.yaml"
        path.write_text(CONFIG.format(ledger=ledger, upstream=upstream.url))
        with RouterProcess(path) as router:
            client = closed_after_test(
                openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0)
            )
            yield upstream, router, client, ledger


def test_images_audio_and_speech_are_priced_in_the_ledger_the_budgets_and_the_report(
    tmp_path: Path,
) -> None:
    with _priced(tmp_path) as (upstream, _router, client, ledger):
        # Two images asked for, one answered: 0.08 reserved, then 0.04 charged.
        upstream.add("/v1/images/generations", image_reply(1))
        first = client.images.with_raw_response.generate(model="draw", prompt="a cat", n=2)
        assert first.headers["x-budget-remaining"] == "0.02"
        assert first.headers["x-budget-unit"] == "USD"
        # 0.04 spent, 0.04 reserved for this one: the first's reconciliation shows
        upstream.add("/v1/images/generations", image_reply(1))
        second = client.images.with_raw_response.generate(model="draw", prompt="a dog")
        assert second.headers["x-budget-remaining"] == "0.02"
        assert len(second.parse().data) == 1
        # 0.08 spent: one more image (0.04) does not fit in 0.10
        with pytest.raises(openai.RateLimitError) as refused:
            client.images.generate(model="draw", prompt="a bird")
        assert refused.value.code == "budget_exceeded"
        assert refused.value.response.headers["x-budget-remaining"] == "0.02"

        # Transcriptions: the seconds the answer reports (`usage`, else `duration`),
        # else the upload's own length (a WAV file: exact).
        transcripts = "/v1/audio/transcriptions"
        upstream.add(transcripts, transcription_reply("hi", "json", duration=12))
        client.audio.transcriptions.create(model="listen", file=("a.wav", _wav(2)))
        upstream.add(transcripts, transcription_reply("hi", "verbose_json", duration=7.5))
        verbose = client.audio.transcriptions.create(
            model="listen", file=("a.wav", _wav(2)), response_format="verbose_json"
        )
        assert verbose.duration == 7.5
        upstream.add(transcripts, transcription_reply("hi", "text"))
        text = client.audio.transcriptions.create(
            model="listen", file=("a.wav", _wav(3)), response_format="text"
        )
        assert "hi" in str(text)
        # Speech: the characters of its input.
        upstream.add("/v1/audio/speech", speech_reply(b"ID3" + bytes(5000)))
        audio = client.audio.speech.create(model="speak", voice="alloy", input="hello world")
        assert len(audio.content) == 5003
        # A target priced by tokens alone: its images are recorded with no cost.
        upstream.add("/v1/images/generations", image_reply(3))
        client.images.generate(model="tokens-only", prompt="x", n=3)

        rows = wait_for_rows(ledger, 8)
    assert len(rows) == 8
    assert _costs(rows) == [
        ("draw", "images", 200, 40_000_000),  # 1 image x 0.04
        ("draw", "images", 200, 40_000_000),
        ("draw", "images", 429, 0),  # refused: nothing spent
        ("listen", "transcriptions", 200, 1_200_000),  # usage: 12 s x 0.0001
        ("listen", "transcriptions", 200, 750_000),  # duration: 7.5 s
        ("listen", "transcriptions", 200, 300_000),  # text: the 3 s WAV upload
        ("speak", "speech", 200, 165_000),  # 11 characters x 15 per million
        ("tokens-only", "images", 200, None),  # no per-image price
    ]

    # `llm-switchyard usage`: the same costs, per model.
    out = subprocess.run(
        [cli_command(), "usage", "--ledger", ledger, "--by", "model", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    by_model = {row["model"]: row for row in report["rows"]}
    assert by_model["draw"]["cost_nanos"] == 80_000_000
    assert by_model["listen"]["cost_nanos"] == 2_250_000
    assert by_model["speak"]["cost_nanos"] == 165_000
    assert by_model["tokens-only"]["unpriced_requests"] == 1
    assert report["totals"]["cost_nanos"] == 80_000_000 + 2_250_000 + 165_000


def test_a_money_budget_over_transcriptions_reserves_the_upload_and_charges_the_answer(
    tmp_path: Path,
) -> None:
    config = textwrap.dedent(
        """
        server: {{auth: none, watch_config: false}}
        budgets:
          audio: {{amount: 0.001, period: month}}
        providers:
          up: {{plugin: openai, base_url: "{upstream}/v1", api_key: sk-up}}
        models:
          listen:
            targets: [{{provider: up, model: whisper, price: {{per_audio_second: 0.0001}}}}]
            budgets: [audio]
        """
    )
    with FakeUpstream() as upstream:
        path = tmp_path / "router.yaml"
        path.write_text(config.format(upstream=upstream.url))
        with RouterProcess(path) as router:
            client = closed_after_test(
                openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0)
            )
            # a 4 s WAV: 0.0004 reserved; the upstream reports 6 s: 0.0006 charged
            upstream.add("/v1/audio/transcriptions", transcription_reply("hi", "json", duration=6))
            first = client.audio.transcriptions.with_raw_response.create(
                model="listen", file=("a.wav", _wav(4))
            )
            assert first.headers["x-budget-remaining"] == "0.0006"
            # 0.0006 spent: another 4 s (0.0004) still fits, exactly
            upstream.add("/v1/audio/transcriptions", transcription_reply("hi", "json", duration=4))
            second = client.audio.transcriptions.with_raw_response.create(
                model="listen", file=("a.wav", _wav(4))
            )
            assert second.headers["x-budget-remaining"] == "0"
            with pytest.raises(openai.RateLimitError) as refused:
                client.audio.transcriptions.create(model="listen", file=("a.wav", _wav(1)))
    assert refused.value.code == "budget_exceeded"
    assert len(upstream.received("/v1/audio/transcriptions")) == 2


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # (the SDK's translations)
def test_image_edits_and_translations_are_priced_as_images_and_seconds_of_audio(
    tmp_path: Path,
) -> None:
    """An edit reserves the images its form asks for and is charged for those its answer
    holds; a translation is charged for the seconds its answer reports."""
    image = ("a.png", PNG, "image/png")
    with _priced(tmp_path) as (upstream, _router, client, ledger):
        # Two images asked for (0.08 reserved), one answered: 0.04 charged.
        upstream.add("/v1/images/edits", image_reply(1))
        first = client.images.with_raw_response.edit(model="edit", image=image, prompt="a hat", n=2)
        assert first.headers["x-budget-remaining"] == "0.02"
        upstream.add("/v1/images/edits", image_reply(1))
        second = client.images.with_raw_response.edit(model="edit", image=image, prompt="x")
        assert second.headers["x-budget-remaining"] == "0.02"  # 0.04 spent, 0.04 held
        with pytest.raises(openai.RateLimitError) as refused:  # 0.08 spent
            client.images.edit(model="edit", image=image, prompt="x")
        assert refused.value.code == "budget_exceeded"
        upstream.add(
            "/v1/audio/translations", transcription_reply("hi", "verbose_json", duration=9)
        )
        client.audio.translations.create(
            model="translate", file=("a.wav", _wav(2)), response_format="verbose_json"
        )
        upstream.add("/v1/audio/translations", transcription_reply("hi", "text"))
        client.audio.translations.create(
            model="translate", file=("a.wav", _wav(3)), response_format="text"
        )
        rows = wait_for_rows(ledger, 5)
    assert _costs(rows) == [
        ("edit", "image_edits", 200, 40_000_000),  # 1 image x 0.04
        ("edit", "image_edits", 200, 40_000_000),
        ("edit", "image_edits", 429, 0),
        ("translate", "translations", 200, 900_000),  # the answer's 9 s x 0.0001
        ("translate", "translations", 200, 300_000),  # text: the 3 s WAV upload
    ]
    assert len(upstream.received("/v1/images/edits")) == 2


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # (the SDK's variations)
def test_image_variations_are_priced_per_image(tmp_path: Path) -> None:
    """A variation reserves the images its form asks for and is charged for those its
    answer holds, as an edit is."""
    image = ("a.png", PNG, "image/png")
    with _priced(tmp_path) as (upstream, _router, client, ledger):
        upstream.add("/v1/images/variations", image_reply(2))
        varied = client.images.with_raw_response.create_variation(model="vary", image=image, n=2)
        assert varied.headers["x-budget-remaining"] == "0.02"  # 0.08 of 0.10 spent
        with pytest.raises(openai.RateLimitError) as refused:  # 0.04 more would pass 0.10
            client.images.create_variation(model="vary", image=image)
        assert refused.value.code == "budget_exceeded"
        rows = wait_for_rows(ledger, 2)
    assert _costs(rows) == [
        ("vary", "image_variations", 200, 80_000_000),
        ("vary", "image_variations", 429, 0),
    ]


def test_streamed_images_are_charged_for_the_images_asked_for(tmp_path: Path) -> None:
    """A streamed answer's images pass through as events, unread: the images the request
    asked for (`n`) are what it costs."""
    done = b'event: image_generation.completed\ndata: {"type":"image_generation.completed"}\n\n'
    events = Reply(200, {"content-type": "text/event-stream"}, frames=[done, done])
    with _priced(tmp_path) as (upstream, router, _client, ledger):
        upstream.add("/v1/images/generations", events)
        answer = httpx.post(
            router.base_url + "/images/generations",
            json={"model": "draw", "prompt": "two cats", "n": 2, "stream": True},
        )
        assert answer.status_code == 200, answer.text
        assert answer.content == done * 2
        assert answer.headers["content-type"] == "text/event-stream"
        rows = wait_for_rows(ledger, 1)
    assert [(r["operation"], r["cost_nanos"]) for r in rows] == [("images", 80_000_000)]
