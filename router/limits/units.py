"""What a request costs token-counting rate limits, for operations whose unit is not tokens.

A `tokens_per_*` budget counts chat, completions, embeddings and moderations in tokens: the
prompt's estimate plus `max_tokens`, replaced by the usage the upstream reports. Where tokens
make no sense it counts the operation's own unit, estimated once when the request is admitted
and never reconciled (an image model's usage, where it reports one, counts other things):

    images          `n` images x `IMAGE_COST` (1,000) each, made or edited
    speech          the tokens of the text to speak (characters / 4)
    transcriptions  seconds of audio: exact for a WAV file (from its header), else the
                    upload's bytes / `AUDIO_BYTES_PER_SECOND` (16,000: 128 kbit/s); the
                    same for translations
    rerank          the tokens of the query and of every document

Request-count and concurrency limits count every request as one, whatever its operation.
"""

from __future__ import annotations

from typing import Any

from router.upstream.spool import Upload
from router.upstream.usage import estimate_tokens

IMAGE_COST = 1000  # what one generated image counts, in tokens
AUDIO_BYTES_PER_SECOND = 16_000  # compressed audio at 128 kbit/s, the common bitrate


def images_asked(body: dict[str, Any]) -> int:
    """The images a request asks for: its `n` (a number in JSON, digits in an edit's form),
    1 by default."""
    n = body.get("n")
    if type(n) is str and n.isascii() and n.isdigit():
        n = int(n)
    return n if type(n) is int and n > 0 else 1


def image_cost(body: dict[str, Any]) -> int:
    return images_asked(body) * IMAGE_COST


def speech_cost(body: dict[str, Any]) -> int:
    text = body.get("input")
    return estimate_tokens(len(text)) if isinstance(text, str) else 0


def transcription_cost(body: dict[str, Any]) -> int:
    upload = body.get("file")
    return audio_seconds(upload) if isinstance(upload, Upload) else 0


def rerank_cost(body: dict[str, Any]) -> int:
    chars = _chars(body.get("query"))
    documents = body.get("documents")
    if isinstance(documents, list):
        chars += sum(_chars(document) for document in documents)
    return estimate_tokens(chars)


def _chars(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):  # Cohere's and Jina's `{"text": ...}` documents
        return _chars(value.get("text"))
    return 0


def audio_seconds(upload: Upload) -> int:
    """Seconds of audio in an upload, rounded up (at least 1 for a non-empty file)."""
    if not upload.size:
        return 0
    seconds = wav_seconds(upload.head, upload.size)
    if seconds is None:
        seconds = upload.size / AUDIO_BYTES_PER_SECOND
    return max(1, -int(-seconds // 1))


def wav_seconds(head: bytes, size: int) -> float | None:
    """The duration of a RIFF/WAVE file from its first bytes (`head`) and its size, or None
    for anything else. A `data` chunk of unknown length (a streamed WAV writes 0 or
    0xFFFFFFFF) runs to the end of the file."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    at, byte_rate = 12, 0
    while at + 8 <= len(head):
        chunk, length = head[at : at + 4], int.from_bytes(head[at + 4 : at + 8], "little")
        body = at + 8
        if chunk == b"fmt " and length >= 16 and body + 12 <= len(head):
            byte_rate = int.from_bytes(head[body + 8 : body + 12], "little")
        elif chunk == b"data":
            if not byte_rate:
                return None
            if length in (0, 0xFFFFFFFF) or body + length > size:
                length = size - body
            return length / byte_rate
        at = body + length + (length & 1)
    return None
