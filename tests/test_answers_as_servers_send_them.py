"""Answers in forms an upstream may well send, read as what they say, through
`llm-switchyard serve`: a message content (or a stream delta's) as a list of parts, as some
OpenAI-compatible servers send it, is its text in every API; an event stream framed as the
SSE standard allows (a byte-order mark first, CR or CRLF line ends, comments, retry fields,
event names, no space after the colon) is read whole; a JSON body after a byte-order mark,
which JSON parsers may ignore (RFC 8259) and the OpenAI SDK does, is read too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import orjson
import pytest

from router.testing import (
    FakeUpstream,
    RouterProcess,
    chat_chunk,
    chat_chunks,
    chat_completion,
    closed_after_test,
    json_reply,
    sse_reply,
)

CONFIG = """
server: {{watch_config: false}}
providers:
  odd: {{plugin: openai, base_url: {odd}/v1, api_key: sk-odd}}
models:
  alone: {{targets: [{{provider: odd, model: m}}], retries: {{attempts: 1}}}}
keys:
  app: {{key: sk-app}}
"""
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def odd() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture
def router(tmp_path: Path, odd: FakeUpstream) -> Iterator[RouterProcess]:
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG.format(odd=odd.url))
    with RouterProcess(path) as served:
        yield served


def _openai(router: RouterProcess) -> openai.OpenAI:
    return closed_after_test(
        openai.OpenAI(base_url=router.base_url, api_key="sk-app", max_retries=0)
    )


def _claude(router: RouterProcess) -> anthropic.Anthropic:
    return closed_after_test(
        anthropic.Anthropic(base_url=router.url, api_key="sk-app", max_retries=0)
    )


# -- content as a list of parts


def test_content_as_a_list_of_parts_is_text_in_the_translated_apis(router, odd) -> None:
    """Some servers answer a message's content as parts: its text reaches the Messages and
    Responses clients, not an empty answer."""
    answer = chat_completion()
    parts = [{"type": "text", "text": "Hello "}, {"type": "text", "text": "parts!"}]
    answer["choices"][0]["message"]["content"] = parts
    odd.set_default("/v1/chat/completions", json_reply(answer))
    claude = _claude(router)
    message = claude.messages.create(model="alone", max_tokens=20, messages=HI)
    assert message.content[0].text == "Hello parts!"  # type: ignore[union-attr]
    assert _openai(router).responses.create(model="alone", input="hi").output_text == "Hello parts!"


def test_a_stream_of_content_parts_gathers_into_its_text(router, odd) -> None:
    """A request that asked for no stream, answered with one whose deltas carry parts: the
    one answer's content is their text joined."""
    parts = [{"type": "text", "text": "Hello "}, {"type": "text", "text": "parts!"}]
    frames = [chat_chunk({"role": "assistant", "content": parts[:1]}),
              chat_chunk({"content": parts[1:]}), chat_chunk({}, "stop"), "[DONE]"]  # fmt: skip
    odd.set_default("/v1/chat/completions", sse_reply(frames))
    answer = _openai(router).chat.completions.create(model="alone", messages=HI)
    assert answer.choices[0].message.content == "Hello parts!"


# -- streams framed as the SSE standard allows, each as its servers send it


def _framed(head: bytes, end: bytes, space: bytes = b" ") -> list:
    """Hello's chunks and [DONE], each `data:` line after `space`, each event ending `end`;
    `head` sent first, before the first chunk, which holds text."""
    chunks = [c for c in chat_chunks(["Hel", "lo"]) if c != "[DONE]"][1:]  # (no role chunk)
    frames = [b"data:" + space + orjson.dumps(chunk) + end for chunk in chunks]
    return [head + frames[0], *frames[1:], b"data:" + space + b"[DONE]" + end]


FRAMINGS = {
    "a byte-order mark first": _framed(b"\xef\xbb\xbf", b"\n\n"),
    "CR line ends": _framed(b"", b"\r\r"),
    "CRLF line ends": _framed(b"", b"\r\n\r\n"),
    "comments, a retry field, an event name": _framed(
        b": hi\n\nretry: 9\n\nevent: message\n", b"\n\n"
    ),
    "no space after the colon": _framed(b"", b"\n\n", b""),
}


@pytest.mark.parametrize("framing", FRAMINGS)
def test_a_stream_framed_as_the_sse_standard_allows_is_read_whole(
    router, odd, framing: str
) -> None:
    odd.set_default("/v1/chat/completions", sse_reply(FRAMINGS[framing]))
    stream = _openai(router).chat.completions.create(model="alone", messages=HI, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Hello"
    claude = _claude(router)
    with claude.messages.stream(model="alone", max_tokens=20, messages=HI) as messages:
        assert "".join(messages.text_stream) == "Hello"


def test_a_json_answer_after_a_byte_order_mark_is_read(router, odd) -> None:
    """Some servers begin a JSON body with a BOM, which JSON parsers may ignore (RFC 8259)
    and the OpenAI SDK does: so does the router, in answers, in answers to a stream request,
    and in error bodies."""
    bom = b"\xef\xbb\xbf"
    odd.set_default(
        "/v1/chat/completions", json_reply(bom + orjson.dumps(chat_completion("Hello whole!")))
    )
    client = _openai(router)
    assert client.chat.completions.create(model="alone", messages=HI).choices[0].message.content
    stream = client.chat.completions.create(model="alone", messages=HI, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Hello whole!"
    error = {"error": {"message": "no such model", "type": "invalid_request_error"}}
    odd.set_default("/v1/chat/completions", json_reply(bom + orjson.dumps(error), status=404))
    with pytest.raises(openai.NotFoundError) as failed:
        client.chat.completions.create(model="alone", messages=HI)
    assert failed.value.body["message"] == "upstream 'odd' returned 404: no such model"
