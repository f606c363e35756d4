"""Chat chunks become the Responses event stream the openai SDK expects, event by event."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from router.errors import UpstreamConnectionError, UpstreamRateLimited
from router.translate import ResponsesStream

EVENT = TypeAdapter(ResponseStreamEvent)
REQUEST = {"model": "router-model", "input": "Hi", "stream": True}
PREAMBLE = ["response.created", "response.in_progress"]
TEXT_ITEM = [
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
]


def run(chunks: list[dict[str, Any]], *, fail: Any = None, **kw: Any) -> bytes:
    stream = ResponsesStream(kw.pop("request", REQUEST), "router-model", **kw)
    out = b"".join(stream.feed(chunk) for chunk in chunks)
    out += stream.fail(fail) if fail is not None else stream.finish()
    assert stream.finish() == b"" and stream.feed(chunks[0] if chunks else {}) == b""
    return out


def events(data: bytes, sse: Any, openapi_check: Any) -> list[dict[str, Any]]:
    """The events, each checked: named as its type, valid for the SDK and the schema,
    numbered in sequence."""
    parsed = sse(data)
    for position, (name, event) in enumerate(parsed):
        assert name == event["type"]
        assert event["sequence_number"] == position
        EVENT.validate_python(event)
        openapi_check("ResponseStreamEvent", event)
    return [event for _, event in parsed]


def test_text_stream(chat: Any, sse: Any, openapi_check: Any) -> None:
    data = run([*chat.text("Hel", "lo"), chat.usage_chunk(9, 2)])
    stream = events(data, sse, openapi_check)
    assert [e["type"] for e in stream] == [*PREAMBLE, *TEXT_ITEM, "response.completed"]
    created, final = stream[0]["response"], stream[-1]["response"]
    assert created["status"] == "in_progress" and created["output"] == []
    assert final["id"] == created["id"] and final["status"] == "completed"
    item_id = stream[2]["item"]["id"]
    assert {e["item_id"] for e in stream[3:8]} == {item_id}
    assert {(e["output_index"], e["content_index"]) for e in stream[3:8]} == {(0, 0)}
    assert [e["delta"] for e in stream if e["type"] == "response.output_text.delta"] == [
        "Hel",
        "lo",
    ]
    assert stream[6]["text"] == "Hello"
    assert final["output"] == [stream[-2]["item"]]
    assert final["usage"]["input_tokens"] == 9 and final["usage"]["output_tokens"] == 2


def test_the_sdk_accumulates_the_stream(chat: Any, openai_client: Any) -> None:
    data = run([*chat.text("Hel", "lo"), chat.usage_chunk(9, 2)])
    with openai_client(data, stream=True).responses.stream(model="m", input="Hi") as stream:
        texts = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert texts == ["Hel", "lo"]
    assert final.output_text == "Hello"
    assert final.status == "completed"
    assert final.usage is not None and final.usage.total_tokens == 11

    raw = openai_client(data, stream=True).responses.create(model="m", input="Hi", stream=True)
    kinds = [event.type for event in raw]
    assert kinds == [*PREAMBLE, *TEXT_ITEM, "response.completed"]


def tool_chunks(chat: Any) -> list[dict[str, Any]]:
    return [
        chat.chunk({"role": "assistant", "content": None}),
        *chat.tool_call(0, "call_w", "get_weather", '{"ci', 'ty": "Paris"}'),
        *chat.tool_call(1, "call_t", "get_time", "{}"),
        chat.chunk({}, "tool_calls"),
        chat.usage_chunk(),
    ]


def _one_item_at_a_time(stream: list[dict[str, Any]]) -> None:
    """OpenAI's own order: an item is added only once the one before it is done, numbered
    from 0 in order, and every event below the item level is about the item open then."""
    open_item = None
    added = 0
    for event in stream:
        kind = event["type"]
        if kind == "response.output_item.added":
            index = event["output_index"]
            assert open_item is None, f"item {index} is added while {open_item} is open"
            assert index == added
            open_item, added = index, added + 1
        elif kind == "response.output_item.done":
            assert event["output_index"] == open_item
            open_item = None
        elif "output_index" in event:
            assert event["output_index"] == open_item
    assert open_item is None


def test_tool_call_stream(chat: Any, sse: Any, openapi_check: Any, openai_client: Any) -> None:
    data = run(tool_chunks(chat))
    stream = events(data, sse, openapi_check)
    added = [e for e in stream if e["type"] == "response.output_item.added"]
    assert [(e["output_index"], e["item"]["call_id"], e["item"]["name"]) for e in added] == [
        (0, "call_w", "get_weather"),
        (1, "call_t", "get_time"),
    ]
    deltas = [e for e in stream if e["type"] == "response.function_call_arguments.delta"]
    assert [(e["output_index"], e["delta"]) for e in deltas] == [
        (0, '{"ci'),
        (0, 'ty": "Paris"}'),
        (1, "{}"),
    ]
    done = [e for e in stream if e["type"] == "response.function_call_arguments.done"]
    assert [(e["name"], e["arguments"]) for e in done] == [
        ("get_weather", '{"city": "Paris"}'),
        ("get_time", "{}"),
    ]
    assert {e["item_id"] for e in done} == {e["item"]["id"] for e in added}
    _one_item_at_a_time(stream)

    with openai_client(data, stream=True).responses.stream(model="m", input="x") as s:
        final = s.get_final_response()
    assert [(i.type, i.call_id, i.arguments) for i in final.output] == [  # type: ignore[union-attr]
        ("function_call", "call_w", '{"city": "Paris"}'),
        ("function_call", "call_t", "{}"),
    ]


def test_interleaved_tool_calls_and_a_late_name(
    chat: Any, sse: Any, openapi_check: Any, openai_client: Any
) -> None:
    """Fragments told apart by index, one call's name arriving after its first fragment."""
    chunks = [
        chat.chunk({"tool_calls": [{"index": 0, "id": "c0", "function": {"arguments": '{"a"'}}]}),
        chat.chunk({"tool_calls": [{"index": 1, "id": "c1", "function": {"name": "g"}}]}),
        chat.chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": ":1"}}]}),
        chat.chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
        chat.chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}),
        chat.chunk({}, "tool_calls"),
    ]
    data = run(chunks)
    _one_item_at_a_time(events(data, sse, openapi_check))  # c1, named first, then c0 whole
    with openai_client(data, stream=True).responses.stream(model="m", input="x") as s:
        final = s.get_final_response()
    assert [(i.name, i.call_id, i.arguments) for i in final.output] == [  # type: ignore[union-attr]
        ("g", "c1", "{}"),
        ("f", "c0", '{"a":1}'),
    ]


def test_reasoning_text_then_tool_call(
    chat: Any, sse: Any, openapi_check: Any, openai_client: Any
) -> None:
    chunks = [
        chat.chunk({"role": "assistant", "content": ""}),
        chat.chunk({"reasoning_content": "Need "}),
        chat.chunk({"reasoning_content": "the time."}),
        chat.chunk({"content": "Checking."}),
        *chat.tool_call(0, "call_t", "get_time", "{}"),
        chat.chunk({}, "tool_calls"),
    ]
    data = run(chunks, prompt_tokens=30)
    stream = events(data, sse, openapi_check)
    added = [e["item"]["type"] for e in stream if e["type"] == "response.output_item.added"]
    assert added == ["reasoning", "message", "function_call"]
    kinds = [e["type"] for e in stream]
    assert kinds.count("response.reasoning_text.delta") == 2
    final = stream[-1]["response"]
    assert final["output"][0]["content"] == [{"type": "reasoning_text", "text": "Need the time."}]
    assert final["usage"]["input_tokens"] == 30  # no usage chunk: the estimates
    assert final["usage"]["output_tokens"] == 7  # (25 characters, 4 a token)

    with openai_client(data, stream=True).responses.stream(model="m", input="x") as s:
        response = s.get_final_response()
    assert [item.type for item in response.output] == ["reasoning", "message", "function_call"]
    assert response.output_text == "Checking."


@pytest.mark.parametrize(
    ("finish", "reason"), [("length", "max_output_tokens"), ("content_filter", "content_filter")]
)
def test_cut_streams_end_incomplete(
    chat: Any, sse: Any, openapi_check: Any, openai_client: Any, finish: str, reason: str
) -> None:
    data = run([*chat.text("Once", " upon", finish=finish), chat.usage_chunk()])
    stream = events(data, sse, openapi_check)
    final = stream[-1]
    assert final["type"] == "response.incomplete"
    assert final["response"]["status"] == "incomplete"
    assert final["response"]["incomplete_details"] == {"reason": reason}
    assert final["response"]["output"][0]["status"] == "incomplete"

    raw = openai_client(data, stream=True).responses.create(model="m", input="x", stream=True)
    last = list(raw)[-1]
    assert last.type == "response.incomplete"
    assert last.response.incomplete_details.reason == reason


def test_failure_mid_stream_ends_with_response_failed(
    chat: Any, sse: Any, openapi_check: Any, openai_client: Any
) -> None:
    chunks = [*chat.text("Hel")[:-1], *chat.tool_call(0, "c0", "f", '{"a"')]
    error = UpstreamConnectionError("upstream 'p' ended the stream mid-answer")
    data = run(chunks, fail=error)
    stream = events(data, sse, openapi_check)
    failed = stream[-1]
    assert failed["type"] == "response.failed"
    response = failed["response"]
    assert response["id"] == stream[0]["response"]["id"]
    assert response["status"] == "failed"
    assert response["error"] == {"code": "server_error", "message": error.message}
    assert [(i["type"], i["status"]) for i in response["output"]] == [
        ("message", "completed"),
        ("function_call", "incomplete"),
    ]
    assert response["output"][1]["arguments"] == '{"a"'

    # The SDK passes the failure on as an event; there is no final response to get.
    with openai_client(data, stream=True).responses.stream(model="m", input="x") as s:
        seen = list(s)
        assert seen[-1].type == "response.failed"
        assert seen[-1].response.error.code == "server_error"
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            s.get_final_response()


def test_failure_before_any_chunk(sse: Any, openapi_check: Any) -> None:
    stream = events(run([], fail=UpstreamRateLimited("slow down")), sse, openapi_check)
    assert [e["type"] for e in stream] == [*PREAMBLE, "response.failed"]
    assert stream[-1]["response"]["error"]["code"] == "rate_limit_exceeded"
    assert stream[-1]["response"]["model"] == "router-model"


def test_role_only_and_empty_chunks_open_nothing(chat: Any, sse: Any) -> None:
    chunks = [
        chat.chunk({"role": "assistant"}),
        chat.chunk({"content": ""}),
        chat.chunk({"content": None, "tool_calls": []}),
        chat.chunk({}, "stop"),
    ]
    stream = [event for _, event in sse(run(chunks))]
    assert [e["type"] for e in stream] == [*PREAMBLE, "response.completed"]
    assert stream[-1]["response"]["output"] == []


def test_usage_in_the_finish_chunk(chat: Any, sse: Any) -> None:
    """LiteLLM sends usage with the last choice rather than in a chunk of its own."""
    chunks = [*chat.text("Hi")[:-1], chat.chunk({}, "stop", usage=chat.usage(4, 1, cached=2))]
    usage = sse(run(chunks))[-1][1]["response"]["usage"]
    assert usage["input_tokens"] == 4 and usage["input_tokens_details"]["cached_tokens"] == 2


def test_refusal_stream(chat: Any, sse: Any, openapi_check: Any, openai_client: Any) -> None:
    chunks = [chat.chunk({"role": "assistant", "refusal": ""}), chat.chunk({"refusal": "No."})]
    data = run([*chunks, chat.chunk({}, "stop")])
    stream = events(data, sse, openapi_check)
    assert "response.refusal.delta" in [e["type"] for e in stream]
    assert stream[-1]["response"]["output"][0]["content"] == [{"type": "refusal", "refusal": "No."}]
    with openai_client(data, stream=True).responses.stream(model="m", input="x") as s:
        final = s.get_final_response()
    assert final.output[0].content[0].refusal == "No."  # type: ignore[union-attr]


def test_echoed_settings_and_model(chat: Any, sse: Any) -> None:
    request = {**REQUEST, "instructions": "Be brief.", "metadata": {"k": "v"}}
    stream = [event for _, event in sse(run(chat.text("x"), request=request))]
    for event in (stream[0], stream[-1]):
        assert event["response"]["instructions"] == "Be brief."
        assert event["response"]["metadata"] == {"k": "v"}
        assert event["response"]["model"] == "up-model"  # as the chunks name it


def test_sdk_error_class_is_not_raised_for_response_failed(
    openai_client: Any,
) -> None:
    """(The SDK raises `APIError` only for a top-level `error` key, which we never send.)"""
    data = run([], fail=UpstreamConnectionError("gone"))
    raw = openai_client(data, stream=True).responses.create(model="m", input="x", stream=True)
    try:
        kinds = [event.type for event in raw]
    except openai.APIError:  # pragma: no cover
        pytest.fail("the SDK treated response.failed as a transport error")
    assert kinds[-1] == "response.failed"
