"""Fake OpenAI answers for the operations beyond chat: images (made or edited), speech,
transcriptions (and translations), moderations, and the rerank shape of Cohere, Jina and
vLLM. Queue them on a `FakeUpstream`:

    upstream.add("/v1/images/generations", image_reply(2))
    upstream.add("/v1/audio/speech", openai_error(429, retry_after=3), speech_reply(audio))
    reader = UploadReader()
    upstream.set_streaming("/v1/audio/transcriptions", reader)

`UploadReader` reads a multipart upload the way a server does, as it arrives, keeping its
text fields, its file's size and digest, never the file.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from router.providers.mock_media import CATEGORIES  # OpenAI's moderation categories
from router.testing.fake_upstream import Received, Reply, json_reply
from router.upstream.multipart import MultipartParser, Part, boundary_of

PNG_B64 = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mPw7/v+HwAF2ALUS3IXJwAAAABJRU5E"
    "rkJggg=="
)
PNG = base64.b64decode(PNG_B64)  # (an image to upload for an edit)


def openai_error(
    status: int,
    message: str = "Rate limit reached for requests",
    type: str = "requests",
    code: str | None = "rate_limit_exceeded",
    *,
    retry_after: int | None = None,
    param: str | None = None,
) -> Reply:
    """OpenAI's error envelope; a 429 with `retry-after` when given."""
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    headers = {"x-request-id": "req_fake"}
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    return json_reply(body, status, headers)


def image_reply(n: int = 1, *, b64: bool = True, created: int = 1732000000) -> Reply:
    """`ImagesResponse`: `n` images as `b64_json` (a 1x1 PNG) or as a `url`."""
    item = {"b64_json": PNG_B64} if b64 else {"url": "https://images.example/fake.png"}
    return json_reply({"created": created, "data": [dict(item) for _ in range(n)]})


def speech_reply(
    audio: bytes, content_type: str = "audio/mpeg", *, chunk: int = 4096, delay: float = 0.0
) -> Reply:
    """Audio sent in `chunk`-byte pieces, `delay` seconds apart, as OpenAI streams speech."""
    frames: list[bytes | str | dict[str, Any]] = [
        audio[i : i + chunk] for i in range(0, len(audio), chunk)
    ]
    return Reply(200, {"content-type": content_type}, frames=frames, delay=delay)


def transcription_reply(text: str, response_format: str = "json", duration: float = 1.0) -> Reply:
    """A transcript in `response_format`: json, verbose_json, text, srt or vtt."""
    if response_format == "json":
        return json_reply({"text": text, "usage": {"type": "duration", "seconds": duration}})
    if response_format == "verbose_json":
        return json_reply(
            {"task": "transcribe", "language": "english", "duration": duration, "text": text}
        )
    if response_format == "srt":
        body = f"1\n00:00:00,000 --> 00:00:01,000\n{text}\n\n"
    elif response_format == "vtt":
        body = f"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n{text}\n\n"
    else:
        body = text + "\n"
    return Reply(200, {"content-type": "text/plain; charset=utf-8"}, body.encode())


def moderation_reply(flagged: Sequence[str] = (), model: str = "omni-moderation-latest") -> Reply:
    """One moderation result, with the categories in `flagged` flagged."""
    result = {
        "flagged": bool(flagged),
        "categories": {c: c in flagged for c in CATEGORIES},
        "category_scores": {c: 0.9 if c in flagged else 0.001 for c in CATEGORIES},
        "category_applied_input_types": {c: ["text"] for c in CATEGORIES},
    }
    return json_reply({"id": "modr-fake", "model": model, "results": [result]})


def rerank_reply(scores: Sequence[float], model: str = "rerank-fake") -> Reply:
    """A rerank answer (Jina's and vLLM's shape: `results` by relevance, `usage`)."""
    ranked = sorted(enumerate(scores), key=lambda item: -item[1])
    results = [{"index": i, "relevance_score": score} for i, score in ranked]
    return json_reply(
        {"id": "rerank-fake", "model": model, "results": results, "usage": {"total_tokens": 10}}
    )


@dataclass
class ReadUpload:
    """What `UploadReader` kept of one upload."""

    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    content_type: str | None = None
    size: int = 0
    sha256: str = ""


class _FormReader:
    """Keeps what `ReadUpload` holds of a multipart body fed to it chunk by chunk."""

    def __init__(self, boundary: bytes) -> None:
        self.parser = MultipartParser(boundary)
        self.upload, self.digest = ReadUpload(), hashlib.sha256()
        self.part: Part | None = None
        self.text = b""

    def feed(self, chunk: bytes) -> None:
        upload = self.upload
        for event in self.parser.feed(chunk):
            if isinstance(event, Part):
                self.part, self.text = event, b""
                if event.filename is not None:
                    upload.filename, upload.content_type = event.filename, event.content_type
            elif event is None:
                if self.part is not None and self.part.filename is None:
                    upload.fields[self.part.name] = self.text.decode()
            elif self.part is not None and self.part.filename is not None:
                upload.size += len(event)
                self.digest.update(event)
            else:
                self.text += event

    def finish(self) -> ReadUpload:
        self.parser.finish()
        self.upload.sha256 = self.digest.hexdigest()
        return self.upload


def read_form(received: Received) -> ReadUpload | None:
    """What `UploadReader` keeps of a request a fake has read whole; None if it is not a
    multipart form (a fake answers that with its own 400)."""
    boundary = boundary_of(received.headers.get("content-type", ""))
    if boundary is None:
        return None
    reader = _FormReader(boundary)
    reader.feed(received.body)
    try:
        return reader.finish()
    except ValueError:
        return None


@dataclass
class UploadReader:
    """A `FakeUpstream.set_streaming` handler for multipart uploads: reads each as it
    arrives (never holding its file), then answers `reply(upload)` (a json transcript of
    the file's size by default)."""

    reply: Callable[[ReadUpload], Reply] | None = None
    uploads: list[ReadUpload] = field(default_factory=list)

    async def __call__(self, received: Received, chunks: AsyncIterator[bytes]) -> Reply:
        boundary = boundary_of(received.headers.get("content-type", ""))
        if boundary is None:
            return openai_error(400, "expected multipart/form-data", "invalid_request_error", None)
        reader = _FormReader(boundary)
        async for chunk in chunks:
            reader.feed(chunk)
        upload = reader.finish()
        self.uploads.append(upload)
        if self.reply is not None:
            return self.reply(upload)
        text_out = f"{upload.size} bytes heard"
        return transcription_reply(text_out, upload.fields.get("response_format", "json"))
