"""What a metered operation's answer counts for its price (`Call.units`): the images an
images answer holds (made or edited), the milliseconds of audio a transcription's (or a
translation's) answer reports, the characters a speech request asks to speak; and what a
request is estimated to count at admission, for money budgets.

A transcription's answer is passed on as it arrives (`router.http.binary`); when it is JSON
(`json`, `verbose_json`) its bytes are kept (up to `MAX_TRANSCRIPT`) to read its duration
when it ends: the upstream's `usage` of type `duration` (what OpenAI bills), else its
`duration`. Text and subtitles say neither: the upload's own length counts (exact for WAV,
else its bytes at 128 kbit/s, as `router.limits.units` estimates it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from router.limits.units import images_asked, transcription_cost
from router.spend.prices import AUDIO_MS, CHARACTERS, IMAGES, METERED

if TYPE_CHECKING:
    from router.types import Call, Operation

MAX_TRANSCRIPT = 4 * 1024 * 1024  # a JSON transcript kept to read its duration, at most


def images_in(data: Any) -> int:
    """The images of an images answer: the items of its `data`."""
    items = data.get("data") if isinstance(data, dict) else None
    return len(items) if isinstance(items, list) else 0


def characters(body: dict[str, Any]) -> int:
    text = body.get("input")
    return len(text) if isinstance(text, str) else 0


def estimate(op: Operation, body: dict[str, Any]) -> tuple[str, int] | None:
    """(kind, units) a request of a metered operation is expected to count; None for the
    others."""
    kind = METERED.get(op.name)
    if kind == IMAGES:
        return kind, images_asked(body)
    if kind == AUDIO_MS:
        return kind, transcription_cost(body) * 1000
    if kind == CHARACTERS:
        return kind, characters(body)
    return None


def transcript_ms(content: bytes) -> int | None:
    """The milliseconds of audio a JSON transcript reports, or None."""
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    usage = data.get("usage")
    if isinstance(usage, dict) and usage.get("type") == "duration":
        seconds = _seconds(usage.get("seconds"))
        if seconds is not None:
            return round(seconds * 1000)
    duration = _seconds(data.get("duration"))
    return round(duration * 1000) if duration is not None else None


def _seconds(value: Any) -> float | None:
    return float(value) if type(value) in (int, float) and value >= 0 else None


async def metered_transcript(
    call: Call, chunks: AsyncIterator[bytes], content_type: str
) -> AsyncIterator[bytes]:
    """`chunks` passed on, setting `call.units` when they end: the duration a JSON answer
    reports, else the upload's length (also for an answer cut short: the upstream
    transcribed the upload)."""
    kept: list[bytes] | None = [] if "json" in content_type else None
    size = 0
    found: int | None = None
    try:
        async for chunk in chunks:
            if kept is not None:
                size += len(chunk)
                if size <= MAX_TRANSCRIPT:
                    kept.append(chunk)
                else:
                    kept = None
            yield chunk
        found = transcript_ms(b"".join(kept)) if kept else None
    finally:
        call.units = found if found is not None else transcription_cost(call.body) * 1000
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
