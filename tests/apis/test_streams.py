"""Streams that break: before their first byte they fall back like any other; after it they
end the way each API's clients expect (`response.failed`, Anthropic's `error` event), never
as a truncated success; and with `stream_recovery: continue` the rest of the answer comes
from another target, translated like the rest."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import orjson
import pytest

from router.testing import chat_chunks, sse_reply

CHAT = "/v1/chat/completions"
TWO = "/two/v1/chat/completions"
HELLO: list[Any] = [{"role": "user", "content": "Hello"}]


def broken(pieces: list[str]) -> Any:
    """A stream that sends its role chunk and `pieces`, then drops the connection."""
    return sse_reply(chat_chunks(pieces), drop_after_frames=1 + len(pieces))


def access_line(router: Any, request_id: str) -> dict[str, Any]:
    line = router.wait_for_line(lambda raw: request_id.encode() in raw and b'"request"' in raw)
    return orjson.loads(line)  # type: ignore[no-any-return]


def test_responses_stream_failing_mid_way(oai: openai.OpenAI, fake: Any, router: Any) -> None:
    fake.add(CHAT, broken(["The ", "answer "]))
    headers = {"x-request-id": "responses-cut-1"}
    with oai.responses.stream(model="m", input="Hello", extra_headers=headers) as stream:
        seen = list(stream)
        with pytest.raises(RuntimeError):  # the SDK's word for a response that never completed
            stream.get_final_response()
    texts = [e.delta for e in seen if e.type == "response.output_text.delta"]
    assert texts == ["The ", "answer "]
    last = seen[-1]
    assert last.type == "response.failed"
    assert last.response.status == "failed" and last.response.error is not None
    assert last.response.error.code == "server_error"
    assert last.response.id == seen[0].response.id  # type: ignore[union-attr]
    assert "response.completed" not in {e.type for e in seen}
    line = access_line(router, "responses-cut-1")
    assert (line["outcome"], line["operation"], line["path"]) == (
        "stream_failed",
        "responses",
        "/v1/responses",
    )


def test_messages_stream_failing_mid_way(
    claude: anthropic.Anthropic, fake: Any, router: Any
) -> None:
    fake.add(CHAT, broken(["The ", "answer "]))
    texts: list[str] = []
    headers = {"x-request-id": "messages-cut-1"}
    with (
        pytest.raises(anthropic.APIStatusError) as raised,
        claude.messages.stream(
            model="m", max_tokens=64, messages=HELLO, extra_headers=headers
        ) as stream,
    ):
        texts.extend(stream.text_stream)
    assert texts == ["The ", "answer "]
    assert raised.value.body["type"] == "error"  # type: ignore[index]
    assert raised.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    line = access_line(router, "messages-cut-1")
    assert (line["outcome"], line["operation"]) == ("stream_failed", "messages")


def test_responses_stream_continued_elsewhere(oai: openai.OpenAI, fake: Any) -> None:
    fake.add(CHAT, broken(["The ", "answer "]))
    fake.add(TWO, sse_reply(chat_chunks(["continues."], model="two-model", usage=(9, 5))))
    with oai.responses.stream(model="recovering", input="Hello") as stream:
        final = stream.get_final_response()
    assert final.status == "completed"
    assert final.output_text == "The answer continues."
    # The continuation used 9 + 5 tokens; the prefilled "The answer " is the client's
    # output, not its input (the usage covers all text the client received).
    assert final.usage is not None and final.usage.total_tokens == 14
    assert final.usage.output_tokens > 5
    assert fake.received(TWO)[0].json()["messages"][-1] == {
        "role": "assistant",
        "content": "The answer ",
    }


def test_messages_stream_continued_elsewhere(claude: anthropic.Anthropic, fake: Any) -> None:
    fake.add(CHAT, broken(["The ", "answer "]))
    fake.add(TWO, sse_reply(chat_chunks(["continues."], model="two-model", usage=(9, 5))))
    with claude.messages.stream(model="recovering", max_tokens=64, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "The answer continues."
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 5  # the prefill too
    assert len(final.content) == 1  # one text block, not one per upstream


@pytest.mark.parametrize("api", ["responses", "messages"])
def test_a_failure_before_the_first_byte_falls_back(
    api: str, oai: openai.OpenAI, claude: anthropic.Anthropic, fake: Any
) -> None:
    fake.add(CHAT, sse_reply(chat_chunks(["never"]), drop_after_frames=1))  # role chunk only
    fake.add(TWO, sse_reply(chat_chunks(["Whole."], model="two-model")))
    if api == "responses":
        with oai.responses.stream(model="recovering", input="Hello") as stream:
            text = stream.get_final_response().output_text
    else:
        with claude.messages.stream(model="recovering", max_tokens=9, messages=HELLO) as stream:
            text = stream.get_final_text()
    assert text == "Whole."
