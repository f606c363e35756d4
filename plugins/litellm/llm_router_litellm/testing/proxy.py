"""`FakeLiteLLMProxy`: a fake that answers like a whole LiteLLM proxy, not one scripted reply.

It checks the key the way LiteLLM does (`x-litellm-api-key` wins over `Authorization`, a
`Bearer ` prefix is optional, virtual keys start with `sk-`), knows its models, validates the
body and answers chat (streamed or not), completions, embeddings and `/models`, under `/v1`
and at the root, and the other operations KoboiLLM documents: images, speech (audio/mpeg,
streamed), transcriptions (a multipart upload), moderations and rerank. Replies queued on the
`FakeUpstream` still come first, so a test can script a failure on top of a working proxy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import orjson

from llm_router_litellm.testing import errors, replies
from router.testing import FakeUpstream, Received, Reply
from router.testing.media import read_form

_REQUIRED = {
    "/chat/completions": "messages",
    "/completions": "prompt",
    "/embeddings": "input",
    "/images/generations": "prompt",
    "/audio/speech": "input",
    "/audio/transcriptions": "file",
    "/moderations": "input",
    "/rerank": "query",
}
_KEY_HEADERS = ("x-litellm-api-key", "authorization", "api-key", "x-api-key")


class FakeLiteLLMProxy:
    """Install on a `FakeUpstream` with `install()`; `keys=()` is a proxy without auth."""

    def __init__(
        self,
        keys: Iterable[str] = ("sk-litellm-test",),
        models: Iterable[str] = (replies.MODEL,),
        answer: str = "Hello from LiteLLM",
    ) -> None:
        self.keys = frozenset(keys)
        self.models = tuple(models)
        self.answer = answer

    def install(self, upstream: FakeUpstream) -> FakeLiteLLMProxy:
        for prefix in ("/v1", ""):
            for route in (*_REQUIRED, "/models"):
                upstream.set_default(prefix + route, self.handle)
        return self

    def _key(self, headers: dict[str, str]) -> str | None:
        for name in _KEY_HEADERS:
            value = headers.get(name)
            if value:
                return value.removeprefix("Bearer ").strip()
        return None

    def _check_key(self, headers: dict[str, str]) -> Reply | None:
        if not self.keys:
            return None
        key = self._key(headers)
        if not key:
            return errors.no_api_key()
        if not key.startswith("sk-"):
            return errors.key_not_sk(f"{key[:4]}****{key[-4:]}")
        if key not in self.keys:
            digest = hashlib.sha256(key.encode()).hexdigest()
            return errors.invalid_virtual_key(f"sk-...{key[-4:]}", digest)
        return None

    def handle(self, received: Received) -> Reply:
        route = received.path.removeprefix("/v1") or "/"
        denied = self._check_key(received.headers)
        if denied is not None:
            return denied
        if route == "/models":
            return replies.models_response(self.models)
        if received.method != "POST":
            return errors.method_not_allowed()
        if route == "/audio/transcriptions":
            return self._transcribe(received)
        try:
            body: Any = orjson.loads(received.body)
        except orjson.JSONDecodeError:
            return errors.malformed_json()
        if not isinstance(body, dict):
            return errors.malformed_json()
        required = _REQUIRED[route]
        if body.get(required) is None:
            return errors.missing_parameter(required, route)
        model = body.get("model")
        if model not in self.models:
            return errors.invalid_model(str(model), route)
        media = self._media(route, body, model)
        if media is not None:
            return media
        if route == "/embeddings":
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            return replies.embedding_response([(0.1, 0.2, 0.3)] * len(inputs), model)
        if route == "/completions":
            return replies.completion_response(self.answer, model)
        if body.get("stream") is True:
            options = body.get("stream_options") or {}
            usage = (8, len(self.answer) // 4 + 1) if options.get("include_usage") else None
            pieces = [self.answer[i : i + 3] for i in range(0, len(self.answer), 3)]
            return replies.chat_stream(pieces, model, usage)
        return replies.chat_response(self.answer, model)

    def _media(self, route: str, body: dict[str, Any], model: str) -> Reply | None:
        if route == "/images/generations":
            n = body.get("n") or 1
            return replies.image_response(n, model, b64=body.get("response_format") == "b64_json")
        if route == "/audio/speech":
            return replies.speech_response(b"\xff\xfb\x10\xc0" + bytes(100) * 20, model)
        if route == "/moderations":
            words = str(body.get("input")).lower()
            return replies.moderation_response(["violence"] if "kill" in words else [], model)
        if route == "/rerank":
            documents = [str(d) for d in body.get("documents") or []]
            query = set(str(body["query"]).lower().split())
            scores = [len(query & set(d.lower().split())) / (len(query) or 1) for d in documents]
            returned = documents if body.get("return_documents") else None
            return replies.rerank_response(scores, model, returned, body.get("top_n"))
        return None

    def _transcribe(self, received: Received) -> Reply:
        form = read_form(received)
        if form is None or form.filename is None:
            return errors.missing_parameter("file", "/audio/transcriptions")
        model = form.fields.get("model")
        if model not in self.models:
            return errors.invalid_model(str(model), "/audio/transcriptions")
        return replies.transcription_response(f"{form.size} bytes transcribed", model)
