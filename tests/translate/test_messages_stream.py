"""Chat chunks become the Messages event stream the anthropic SDK expects."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from anthropic.types import RawMessageStreamEvent
from pydantic import TypeAdapter

from router.errors import UpstreamConnectionError, UpstreamUnavailable
from router.translate import MessagesStream

EVENT = TypeAdapter(RawMessageStreamEvent)
REQUEST = {
    "model": "router-model",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "Hi"}],
    "stream": True,
}
ASK = {"model": "router-model", "max_tokens": 100, "messages": [{"role": "user", "content": "x"}]}


def run(chunks: list[dict[str, Any]], *, fail: Any = None, **kw: Any) -> bytes:
    stream = MessagesStream(kw.pop("request", REQUEST), "router-model", **kw)
    out = b"".join(stream.feed(chunk) for chunk in chunks)
    out += stream.fail(fail) if fail is not None else stream.finish()
    assert stream.finish() == b"" and stream.feed(chunks[0] if chunks else {}) == b""
    return out


def events(data: bytes, sse: Any) -> list[dict[str, Any]]:
    """The events, each named as its type and valid for the SDK (errors and pings aside)."""
    parsed = sse(data)
    for name, event in parsed:
        assert name == event["type"]
        if name not in ("ping", "error"):
            EVENT.validate_python(event)
    return [event for _, event in parsed]


def kinds(stream: list[dict[str, Any]]) -> list[str]:
    return [
        e["type"] + (f":{e['delta']['type']}" if e["type"] == "content_block_delta" else "")
        for e in stream
    ]


def test_text_stream(chat: Any, sse: Any) -> None:
    data = run([*chat.text("Hel", "lo"), chat.usage_chunk(9, 2)], prompt_tokens=7)
    stream = events(data, sse)
    assert kinds(stream) == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta:text_delta",
        "content_block_delta:text_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = stream[0]["message"]
    assert start["id"].startswith("msg_") and start["content"] == []
    assert start["model"] == "up-model" and start["usage"]["input_tokens"] == 7
    assert stream[2] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert stream[6]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert stream[6]["usage"]["output_tokens"] == 2 and stream[6]["usage"]["input_tokens"] == 9


def test_the_sdk_accumulates_the_stream(chat: Any, anthropic_client: Any) -> None:
    data = run([*chat.text("Hel", "lo"), chat.usage_chunk(9, 2)])
    client = anthropic_client(data, stream=True)
    with client.messages.stream(**ASK) as stream:
        texts = list(stream.text_stream)
        message = stream.get_final_message()
    assert texts == ["Hel", "lo"]
    assert message.content[0].text == "Hello"  # type: ignore[union-attr]
    assert (message.stop_reason, message.usage.input_tokens, message.usage.output_tokens) == (
        "end_turn",
        9,
        2,
    )

    raw = anthropic_client(data, stream=True).messages.create(**ASK, stream=True)
    assert [event.type for event in raw] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]  # (the SDK drops pings)


def _one_block_at_a_time(stream: list[dict[str, Any]]) -> None:
    """Anthropic's own order: a block starts only once the one before it has stopped, and
    every delta is for the block open then, numbered from 0 in order."""
    open_block = None
    started = 0
    for event in stream:
        kind = event["type"]
        if kind == "content_block_start":
            assert open_block is None, f"block {event['index']} starts while {open_block} is open"
            assert event["index"] == started
            open_block, started = event["index"], started + 1
        elif kind == "content_block_delta":
            assert event["index"] == open_block
        elif kind == "content_block_stop":
            assert event["index"] == open_block
            open_block = None
    assert open_block is None


def test_tool_use_stream(chat: Any, sse: Any, anthropic_client: Any) -> None:
    chunks = [
        chat.chunk({"role": "assistant", "content": ""}),
        chat.chunk({"content": "Checking."}),
        *chat.tool_call(0, "call_w", "get_weather", '{"ci', 'ty": "Paris"}'),
        *chat.tool_call(1, "call_t", "get_time"),
        chat.chunk({}, "tool_calls"),
        chat.usage_chunk(),
    ]
    data = run(chunks)
    stream = events(data, sse)
    starts = [e for e in stream if e["type"] == "content_block_start"]
    assert [e["content_block"] for e in starts] == [
        {"type": "text", "text": ""},
        {"type": "tool_use", "id": "call_w", "name": "get_weather", "input": {}},
        {"type": "tool_use", "id": "call_t", "name": "get_time", "input": {}},
    ]
    partials = [
        (e["index"], e["delta"]["partial_json"])
        for e in stream
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta"
    ]
    assert partials == [(1, '{"ci'), (1, 'ty": "Paris"}')]
    _one_block_at_a_time(stream)
    assert [e["delta"]["stop_reason"] for e in stream if e["type"] == "message_delta"] == [
        "tool_use"
    ]

    with anthropic_client(data, stream=True).messages.stream(**ASK) as s:
        message = s.get_final_message()
    assert [(b.type, getattr(b, "input", None)) for b in message.content] == [
        ("text", None),
        ("tool_use", {"city": "Paris"}),
        ("tool_use", {}),
    ]
    assert message.stop_reason == "tool_use"


def test_interleaved_tool_calls_and_a_late_name(chat: Any, sse: Any, anthropic_client: Any) -> None:
    chunks = [
        chat.chunk({"tool_calls": [{"index": 0, "id": "c0", "function": {"arguments": '{"a"'}}]}),
        chat.chunk({"tool_calls": [{"index": 1, "id": "c1", "function": {"name": "g"}}]}),
        chat.chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": ":1"}}]}),
        chat.chunk({"tool_calls": [{"index": 1, "function": {"arguments": '{"b": 2}'}}]}),
        chat.chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}),
        chat.chunk({}, "tool_calls"),
    ]
    data = run(chunks)
    stream = events(data, sse)
    _one_block_at_a_time(stream)  # c1, named first, streams; c0 follows it whole
    with anthropic_client(data, stream=True).messages.stream(**ASK) as s:
        message = s.get_final_message()
    assert [(b.id, b.name, b.input) for b in message.content] == [  # type: ignore[union-attr]
        ("c1", "g", {"b": 2}),
        ("c0", "f", {"a": 1}),
    ]


def test_parallel_tool_calls_then_text_keep_blocks_apart(chat: Any, sse: Any) -> None:
    chunks = [
        *chat.tool_call(0, "c0", "f", '{"a":', " 1}"),
        *chat.tool_call(1, "c1", "g", '{"b": 2}'),
        chat.chunk({"content": "Done."}),
        chat.chunk({}, "stop"),
    ]
    stream = events(run(chunks), sse)
    _one_block_at_a_time(stream)
    starts = [e["content_block"].get("name", e["content_block"]["type"]) for e in stream
              if e["type"] == "content_block_start"]  # fmt: skip
    assert starts == ["f", "g", "text"]


def test_thinking_blocks_only_when_enabled(chat: Any, sse: Any, anthropic_client: Any) -> None:
    chunks = [
        chat.chunk({"role": "assistant", "content": ""}),
        chat.chunk({"reasoning_content": "6 times "}),
        chat.chunk({"reasoning_content": "7."}),
        chat.chunk({"content": "42"}),
        chat.chunk({}, "stop"),
    ]
    plain = events(run(chunks), sse)
    assert [e["content_block"]["type"] for e in plain if e["type"] == "content_block_start"] == [
        "text"
    ]

    request = REQUEST | {"thinking": {"type": "enabled", "budget_tokens": 2000}}
    data = run(chunks, request=request)
    stream = events(data, sse)
    assert "content_block_delta:thinking_delta" in kinds(stream)
    with anthropic_client(data, stream=True).messages.stream(**ASK) as s:
        message = s.get_final_message()
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "6 times 7."  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("finish", "reason"), [("length", "max_tokens"), ("content_filter", "refusal")]
)
def test_cut_streams(chat: Any, sse: Any, anthropic_client: Any, finish: str, reason: str) -> None:
    data = run([*chat.text("Once", " upon", finish=finish), chat.usage_chunk()])
    stream = events(data, sse)
    assert stream[-2]["delta"]["stop_reason"] == reason
    with anthropic_client(data, stream=True).messages.stream(**ASK) as s:
        assert s.get_final_message().stop_reason == reason


def test_stop_sequence_in_a_stream(chat: Any, sse: Any) -> None:
    request = REQUEST | {"stop_sequences": ["END"]}
    chunks = [*chat.text("a")[:-1], chat.chunk({}, "stop", stop_reason="END")]
    stream = events(run(chunks, request=request), sse)
    assert stream[-2]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "END"}


def test_failure_mid_stream_is_an_error_event(chat: Any, sse: Any, anthropic_client: Any) -> None:
    error = UpstreamConnectionError("upstream 'p' ended the stream mid-answer")
    data = run(chat.text("Hel")[:-1], fail=error)
    stream = events(data, sse)
    assert kinds(stream) == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta:text_delta",
        "error",
    ]
    assert stream[-1] == {"type": "error", "error": {"type": "api_error", "message": error.message}}

    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        anthropic_client(data, stream=True).messages.stream(**ASK) as s,
    ):
        s.get_final_message()
    assert caught.value.body == stream[-1]


def test_failure_before_any_chunk(sse: Any) -> None:
    stream = events(run([], fail=UpstreamUnavailable("Overloaded")), sse)
    assert kinds(stream) == ["message_start", "ping", "error"]
    assert stream[-1]["error"]["type"] == "overloaded_error"
    assert stream[0]["message"]["model"] == "router-model"


def test_role_only_and_empty_chunks_open_no_block(chat: Any, sse: Any) -> None:
    chunks = [
        chat.chunk({"role": "assistant"}),
        chat.chunk({"content": ""}),
        chat.chunk({"content": None, "tool_calls": []}),
        chat.chunk({}, "stop"),
    ]
    assert kinds(events(run(chunks), sse)) == [
        "message_start",
        "ping",
        "message_delta",
        "message_stop",
    ]


def test_usage_is_estimated_without_a_usage_chunk(chat: Any, sse: Any) -> None:
    stream = events(run(chat.text("x" * 40), prompt_tokens=12), sse)
    assert stream[-2]["usage"]["output_tokens"] == 10
    assert stream[-2]["usage"]["input_tokens"] == 12
