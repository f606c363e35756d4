"""`plugin: mock`: an offline, deterministic model for demos, tests and benchmarks, serving
every built-in operation (what it answers beyond chat: `router.providers.mock_media`).

It answers in-process through the same translation path as a real upstream: it produces the
bytes an OpenAI-compatible server would, and the core parses them like any other.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import struct
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import orjson
from multidict import CIMultiDict
from pydantic import Field

from router.errors import UpstreamTimeout
from router.operations import BUILTIN
from router.providers import mock_media
from router.spec import hookimpl
from router.upstream.multipart import MultipartParser, Part, boundary_of
from router.upstream.provider import Provider, ProviderSettings, UpstreamResponse
from router.upstream.spool import HEAD
from router.upstream.transport import UpstreamStream

ARGUMENT_CHARS = 16  # characters of a streamed tool call's arguments per chunk, per word of
# `words_per_chunk`

_WORDS = [
    "the",
    "router",
    "answers",
    "offline",
    "with",
    "a",
    "deterministic",
    "mock",
    "model",
    "so",
    "demos",
    "tests",
    "and",
    "benchmarks",
    "need",
    "no",
    "provider",
    "keys",
    "and",
    "no",
    "network",
    "at",
    "all",
]


class MockSettings(ProviderSettings):
    answer: str | None = Field(
        None, description="Fixed answer text; by default the answer is derived from the prompt."
    )
    words: int = Field(12, ge=1, le=100_000, description="Length of a derived answer, in words.")
    latency: float = Field(0.0, ge=0, le=600, description="Seconds before the first token.")
    chunk_delay: float = Field(0.0, ge=0, le=60, description="Seconds between stream chunks.")
    words_per_chunk: int = Field(1, ge=1, le=1000, description="Words in each stream chunk.")
    fail_every: int | None = Field(
        None, ge=1, description="Fail every Nth request (1 = always) with `fail_status`."
    )
    fail_status: int = Field(500, ge=400, le=599, description="Status of injected failures.")
    fail_after_chunks: int | None = Field(
        None, ge=0, description="Cut every stream after this many content chunks."
    )
    embedding_dimensions: int = Field(8, ge=1, le=4096, description="Length of embeddings.")


def _prompt_text(body: dict[str, Any]) -> str:
    if "messages" in body:
        parts = []
        for message in body.get("messages") or []:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
        return " ".join(parts)
    prompt = body.get("prompt", body.get("input", ""))
    return prompt if isinstance(prompt, str) else " ".join(map(str, prompt))


def _answer(settings: MockSettings, prompt: str) -> list[str]:
    if settings.answer is not None:
        return settings.answer.split(" ")
    seed = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "big")
    return [_WORDS[(seed + i) % len(_WORDS)] for i in range(settings.words)]


def _continued(settings: MockSettings, body: dict[str, Any]) -> tuple[str, list[str], int]:
    """(prompt, answer words, words already given): a trailing assistant message is a partial
    answer to continue, so the mock carries on with the words after it."""
    messages = body.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        last = messages[-1]
        if last.get("role") == "assistant" and isinstance(last.get("content"), str):
            prompt = _prompt_text({"messages": messages[:-1]})
            return prompt, _answer(settings, prompt), len(last["content"].split())
    prompt = _prompt_text(body)
    return prompt, _answer(settings, prompt), 0


def _usage(prompt: str, words: list[str], choices: int = 1) -> dict[str, int]:
    prompt_tokens = max(1, len(prompt.split()))
    completion = len(words) * choices
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
    }


def _limited(body: dict[str, Any], words: list[str]) -> tuple[str, str, str | None]:
    """(text, finish reason, the stop string that ended it) of an answer of `words` under the
    request's limits, as a model applies them while it writes (a word is a token here): at
    most `max_completion_tokens` (or `max_tokens`) words, `length` when they cut it; cut
    before the first of its `stop` strings, which vLLM-style servers name (`stop_reason`)."""
    most = body.get("max_completion_tokens", body.get("max_tokens"))
    finish = "stop"
    if type(most) is int and 0 <= most < len(words):
        words, finish = words[:most], "length"
    text = " ".join(words)
    stops = body.get("stop")
    stops = [stops] if isinstance(stops, str) else stops if isinstance(stops, list) else []
    found = [(text.find(s), s) for s in stops if isinstance(s, str) and s and s in text]
    if not found:
        return text, finish, None
    at, matched = min(found)
    return text[:at], "stop", matched


def _choices(body: dict[str, Any]) -> int:
    """How many choices a request asks for (`n`): each the same answer, the mock being
    deterministic."""
    n = body.get("n")
    return n if type(n) is int and 1 <= n <= 128 else 1


def _dimensions(body: dict[str, Any], default: int) -> int:
    """The embedding length a request asks for (`dimensions`), else the configured one."""
    dims = body.get("dimensions")
    return dims if type(dims) is int and 1 <= dims <= 4096 else default


def _base64(vector: list[float]) -> str:
    """An embedding as OpenAI sends it for `encoding_format: base64`: little-endian float32."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


async def _read_form(request: httpx.Request) -> tuple[dict[str, str], int, bytes] | None:
    """A multipart upload read as it is sent, keeping only its text fields, the size of its
    files and their first bytes (where a WAV file says its duration); None if not one."""
    boundary = boundary_of(request.headers.get("content-type", ""))
    if boundary is None:
        return None
    parser = MultipartParser(boundary)
    fields: dict[str, str] = {}
    size, head, part, text = 0, b"", None, b""
    async for chunk in request.stream:  # type: ignore[union-attr]
        for event in parser.feed(chunk):
            if isinstance(event, Part):
                part, text = event, b""
            elif event is None:
                if part is not None and part.filename is None:
                    fields[part.name] = text.decode()
            elif part is not None and part.filename is not None:
                head += event[: HEAD - len(head)]
                size += len(event)
            else:
                text += event
    return fields, size, head


def _error(status: int, message: str | None = None, param: str | None = None) -> UpstreamResponse:
    body = orjson.dumps(
        {
            "error": {
                "message": message or f"mock failure injected (status {status})",
                "type": "server_error" if status >= 500 else "invalid_request_error",
                "param": param,
                "code": None,
            }
        }
    )
    headers = CIMultiDict({"content-type": "application/json"})
    if status == 429:
        headers["retry-after"] = "1"
    return UpstreamResponse(status, headers, body)


class MockTransport:
    """Answers a provider's requests in-process, like an OpenAI-compatible server."""

    def __init__(self, settings: MockSettings, model_names: Callable[[], list[str]]) -> None:
        self.settings = settings
        self.counter = itertools.count(1)
        self.model_names = model_names

    def _should_fail(self) -> bool:
        every = self.settings.fail_every
        return every is not None and next(self.counter) % every == 0

    async def send(
        self, request: httpx.Request, timeout: float, connect: float, first_byte: float
    ) -> UpstreamResponse:
        # Its answer comes whole, like an upstream's to a request that does not stream: the
        # first byte is the whole answer.
        limit = min(timeout, first_byte)
        try:
            async with asyncio.timeout(limit):
                return await self._answer(request)
        except TimeoutError:
            raise UpstreamTimeout(f"the mock upstream sent no answer within {limit:g}s") from None

    async def _answer(self, request: httpx.Request) -> UpstreamResponse:
        headers = CIMultiDict({"content-type": "application/json"})
        if request.method == "GET":
            now = int(time.time())
            data = [
                {"id": m, "object": "model", "created": now, "owned_by": "mock"}
                for m in self.model_names()
            ]
            return UpstreamResponse(200, headers, orjson.dumps({"object": "list", "data": data}))
        if self.settings.latency:
            await asyncio.sleep(self.settings.latency)
        if self._should_fail():
            return _error(self.settings.fail_status)
        if request.url.path.endswith(("/images/edits", "/images/variations")) and (
            "multipart/" in request.headers.get("content-type", "")
        ):  # (an edit or variation with its images uploaded; an edit by reference is JSON)
            form = await _read_form(request)
            if form is None:
                return _error(400, "expected a multipart/form-data upload")
            return UpstreamResponse(200, headers, orjson.dumps(mock_media.images(form[0])))
        body = orjson.loads(request.content)
        prompt = _prompt_text(body)
        model = body.get("model", "mock")
        created = int(time.time())
        path = request.url.path
        media = _JSON_MEDIA.get(path.rsplit("/", 1)[-1])
        if media is not None:
            return UpstreamResponse(200, headers, orjson.dumps(media(body)))
        if path.endswith("/embeddings"):
            inputs = body.get("input")
            items = inputs if isinstance(inputs, list) else [inputs]
            dims = _dimensions(body, self.settings.embedding_dimensions)
            data = []
            for i, item in enumerate(items):
                digest = hashlib.sha256(str(item).encode()).digest()
                vector = [round((digest[j % 32] - 128) / 128, 6) for j in range(dims)]
                embedding = _base64(vector) if body.get("encoding_format") == "base64" else vector
                data.append({"object": "embedding", "index": i, "embedding": embedding})
            tokens = max(1, len(prompt.split()))
            payload: dict[str, Any] = {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
            return UpstreamResponse(200, headers, orjson.dumps(payload))
        prompt, words, given = _continued(self.settings, body)
        text, finish, matched = _limited(body, words[given:])
        text = (" " if given and text else "") + text
        n = _choices(body)
        chat = path.endswith("/chat/completions")
        called = mock_media.tool_call(body, text) if chat else None
        shaped = mock_media.structured(body.get("response_format"), text) if chat else None
        if called is not None:  # (a forced call comes first, as a model's does)
            text, finish, matched = called["function"]["arguments"], "tool_calls", None
        elif shaped is not None:  # (whole: a structured answer is not cut by max_tokens)
            text, finish, matched = shaped, "stop", None
        if chat:
            message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
            if called is not None:
                message.update(content=None, tool_calls=[called])
            choices: list[dict[str, Any]] = [{"index": i, "message": message} for i in range(n)]
            kind, prefix = "chat.completion", "chatcmpl-mock"
        else:
            choices = [{"index": i, "text": text} for i in range(n)]
            kind, prefix = "text_completion", "cmpl-mock"
        for choice in choices:
            choice.update(logprobs=None, finish_reason=finish)
            if matched is not None:
                choice["stop_reason"] = matched
        payload = {
            "id": f"{prefix}{created}",
            "object": kind,
            "created": created,
            "model": model,
            "choices": choices,
            "usage": _usage(prompt, text.split(), n),
        }
        return UpstreamResponse(200, headers, orjson.dumps(payload))

    async def open(self, request: httpx.Request, connect: float) -> UpstreamStream:
        if self.settings.latency:
            await asyncio.sleep(self.settings.latency)
        if self._should_fail():
            return _refused(_error(self.settings.fail_status))
        path = request.url.path
        if path.endswith("/audio/speech"):
            return self._speech(orjson.loads(request.content))
        if path.endswith(("/audio/transcriptions", "/audio/translations")):
            return await self._transcription(request)
        if path.endswith(("/images/generations", "/images/edits")):  # streamed partial images
            return await self._image_stream(request)
        body = orjson.loads(request.content)
        headers = CIMultiDict({"content-type": "text/event-stream"})
        return UpstreamStream(200, headers, self._events(request, body))

    def _speech(self, body: dict[str, Any]) -> UpstreamStream:
        kind = body.get("response_format") or "mp3"
        if kind not in mock_media.SPEECH_FORMATS:
            return _refused(
                _error(
                    400,
                    f"the mock makes {', '.join(mock_media.SPEECH_FORMATS)} audio, not '{kind}'",
                    "response_format",
                )
            )
        audio = mock_media.speech(body)
        headers = CIMultiDict({"content-type": mock_media.SPEECH_FORMATS[kind]})
        return UpstreamStream(200, headers, self._paced(audio))

    async def _image_stream(self, request: httpx.Request) -> UpstreamStream:
        if "multipart/" in request.headers.get("content-type", ""):
            form = await _read_form(request)
            if form is None:
                return _refused(_error(400, "expected a multipart/form-data upload"))
            body: dict[str, Any] = dict(form[0])
        else:
            body = orjson.loads(request.content)
        task = "image_edit" if request.url.path.endswith("/edits") else "image_generation"
        headers = CIMultiDict({"content-type": "text/event-stream"})
        return UpstreamStream(200, headers, self._paced(mock_media.image_events(body, task)))

    async def _paced(self, data: bytes, size: int = 4096) -> AsyncIterator[bytes]:
        """`data` in pieces, `chunk_delay` apart, as a server streams audio."""
        for i in range(0, len(data), size):
            if i and self.settings.chunk_delay:
                await asyncio.sleep(self.settings.chunk_delay)
            yield data[i : i + size]

    async def _transcription(self, request: httpx.Request) -> UpstreamStream:
        """A transcript (or a translation's, in English) of the upload."""
        form = await _read_form(request)
        if form is None:
            return _refused(_error(400, "expected a multipart/form-data upload"))
        fields, size, head = form
        task = "translate" if request.url.path.endswith("/translations") else "transcribe"
        kind = fields.get("response_format") or "json"
        if kind not in mock_media.TRANSCRIPT_FORMATS:
            formats = ", ".join(mock_media.TRANSCRIPT_FORMATS)
            return _refused(
                _error(
                    400, f"the mock writes {formats} transcripts, not '{kind}'", "response_format"
                )
            )
        headers = CIMultiDict({"content-type": mock_media.TRANSCRIPT_FORMATS[kind]})
        transcript = mock_media.transcript(size, head, fields, task)
        return UpstreamStream(200, headers, self._paced(transcript))

    async def _events(self, request: httpx.Request, body: dict[str, Any]) -> AsyncIterator[bytes]:
        settings = self.settings
        prompt, words, given = _continued(settings, body)
        text, finish, matched = _limited(body, words[given:])
        n = _choices(body)
        chat = request.url.path.endswith("/chat/completions")
        called = mock_media.tool_call(body, text) if chat else None
        shaped = mock_media.structured(body.get("response_format"), text) if chat else None
        if called is not None:
            text, finish, matched, given = called["function"]["arguments"], "tool_calls", None, 0
        elif shaped is not None:
            text, finish, matched, given = shaped, "stop", None, 0
        words = text.split(" ") if text else []
        created = int(time.time())
        base: dict[str, Any] = {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-mock{created}",
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": created,
            "model": body.get("model", "mock"),
        }

        def frame(
            content: str | None, end: str | None, role: bool = False, call: Any = None
        ) -> bytes:
            """One chunk: `content` or a piece of a tool `call` (or the end, `end`) for each
            of the `n` choices."""
            choices = []
            for index in range(n):
                if chat:
                    delta: dict[str, Any] = {"role": "assistant"} if role else {}
                    if content is not None:
                        delta["content"] = content
                    if call is not None:
                        delta["tool_calls"] = [call]
                    choice: dict[str, Any] = {"index": index, "delta": delta}
                else:
                    choice = {"index": index, "text": content or ""}
                choice["logprobs"] = None
                choice["finish_reason"] = end
                if end is not None and matched is not None:
                    choice["stop_reason"] = matched
                choices.append(choice)
            return b"data: " + orjson.dumps({**base, "choices": choices}) + b"\n\n"

        step = settings.words_per_chunk
        pieces: Iterator[bytes]  # (made as sent: a long answer is not held whole in frames)
        if called is not None:  # the call's name first, then its arguments in pieces
            function = called["function"]
            head = {**called, "index": 0, "function": {"name": function["name"], "arguments": ""}}
            yield frame(None, None, role=True, call=head)
            size = ARGUMENT_CHARS * step
            pieces = (
                frame(None, None, call={"index": 0, "function": {"arguments": text[i : i + size]}})
                for i in range(0, len(text), size)
            )
        else:
            if chat:
                yield frame("", None, role=True)
            pieces = (
                frame((" " if i or given else "") + " ".join(words[i : i + step]), None)
                for i in range(0, len(words), step)
            )
        for count, piece in enumerate(pieces):
            if settings.fail_after_chunks is not None and count >= settings.fail_after_chunks:
                return  # the connection drops mid-answer
            if settings.chunk_delay and count:
                await asyncio.sleep(settings.chunk_delay)
            yield piece
        yield frame(None, finish)
        options = body.get("stream_options") or {}
        if options.get("include_usage"):
            usage = {**base, "choices": [], "usage": _usage(prompt, text.split(), n)}
            yield b"data: " + orjson.dumps(usage) + b"\n\n"
        yield b"data: [DONE]\n\n"

    async def aclose(self) -> None:
        return None


_JSON_MEDIA: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "generations": mock_media.images,
    "edits": mock_media.images,  # (an edit by reference, in JSON)
    "moderations": mock_media.moderations,
    "rerank": mock_media.rerank,
}


def _refused(response: UpstreamResponse) -> UpstreamStream:
    async def body() -> AsyncIterator[bytes]:
        yield response.content

    return UpstreamStream(response.status, response.headers, body())


class MockProvider(Provider):
    """Deterministic answers derived from the prompt; see MockSettings for the knobs. Serves
    every built-in operation (`router.providers.mock_media`)."""

    settings_model = MockSettings
    operations = frozenset(BUILTIN)
    supports_continuation = True  # a trailing assistant message is continued word for word
    answers_pass_through = True  # it writes plain OpenAI answers
    default_base_url = "http://mock.invalid/v1"
    settings: MockSettings

    def local_transport(self) -> MockTransport:
        return MockTransport(self.settings, lambda: ["mock"])


@hookimpl
def register_providers(register: Callable[[str, type[Provider]], None]) -> None:
    register("mock", MockProvider)
