"""Rescuing a stream cut mid-answer when no target can continue it: regeneration, verified
against the text the client already has; continuation declared per target.
Through `llm-switchyard serve`, a fault-injecting fake upstream and the openai SDK."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import orjson
import pytest

from router.testing import (
    FakeUpstream,
    Received,
    has_prefill,
    refusing_prefill,
    word_stream,
    words,
)

A = "/a/v1/chat/completions"
B = "/b/v1/chat/completions"
MSGS = [{"role": "user", "content": "count to sixty"}]
WHOLE = words(60)
CONFIG = """
server: {{auth: none, watch_config: false}}
providers:
  a: {{plugin: openai, base_url: "{url}/a/v1", timeouts: {{first_token: 5, idle: 2, total: 20}}}}
  b: {{plugin: openai, base_url: "{url}/b/v1", timeouts: {{first_token: 5, idle: 2, total: 20}}}}
models:
  regen:
    targets: [{{provider: a, model: ma}}, {{provider: b, model: mb}}]
    stream_recovery: regenerate
  either:
    targets: [{{provider: a, model: ma}}, {{provider: b, model: mb}}]
    stream_recovery: continue_or_regenerate
  declared:
    targets: [{{provider: a, model: ma}}, {{provider: b, model: mb, continuation: false}}]
    stream_recovery: continue_or_regenerate
  refusing:
    targets: [{{provider: a, model: ma}}, {{provider: b, model: mb, continuation: false}}]
    stream_recovery: continue
"""


def stream(client: openai.OpenAI, model: str, request_id: str) -> tuple[str, list[Any], Any]:
    """(text, chunks, error or None) of one streamed request with usage, read to its end."""
    chunks: list[Any] = []
    error = None
    try:
        for chunk in client.chat.completions.create(
            model=model,
            messages=MSGS,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"x-request-id": request_id},
        ):
            chunks.append(chunk)
    except openai.APIError as exc:
        error = exc
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks, error


def access_line(router: Any, request_id: str) -> dict[str, Any]:
    line = router.wait_for_line(lambda raw: request_id.encode() in raw and b'"request"' in raw)
    return orjson.loads(line)  # type: ignore[no-any-return]


def outcomes(line: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["target"], a["outcome"]) for a in line["attempts"]]


def test_cut_stream_is_regenerated_when_the_fallback_refuses_prefills(
    client: openai.OpenAI, fake: FakeUpstream, router: Any
) -> None:
    fake.add(A, word_stream(WHOLE, cut_after=40))
    fake.add(B, refusing_prefill(lambda _: word_stream(WHOLE, model="mb")))
    fake.add(B, refusing_prefill(lambda _: word_stream(WHOLE, model="mb")))
    text, chunks, error = stream(client, "either", "regen-1")
    assert error is None
    assert text == "".join(WHOLE)  # exactly the 60 words, once
    assert len({c.id for c in chunks}) == 1
    assert {c.model for c in chunks} == {"up-model"}  # the model that began the answer
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == 60  # what was delivered
    sent_b = fake.received(B)
    assert [has_prefill(r) for r in sent_b] == [True, False]  # refused, then asked again
    line = access_line(router, "regen-1")
    assert outcomes(line) == [
        ("a/ma", "ok_then_upstream_connection_error"),
        ("b/mb", "continue_invalid_request"),
        ("b/mb", "regenerated"),
    ]
    assert line["completion_tokens"] == 60
    # The cut attempt's prompt and its 40 words were spent too, though not delivered twice.
    assert line["attempts"][0]["wasted_tokens"] >= 40
    assert line["spent_tokens"] >= line["prompt_tokens"] + 60 + 40
    wasted = [
        float(metric.rsplit(" ", 1)[1])
        for metric in httpx.get(router.url + "/metrics").text.splitlines()
        if metric.startswith('llm_router_wasted_tokens_total{model="either"}')
    ]
    assert wasted and wasted[0] >= line["attempts"][0]["wasted_tokens"]


def test_a_target_declared_unable_to_continue_is_never_sent_a_prefill(
    client: openai.OpenAI, fake: FakeUpstream, router: Any
) -> None:
    fake.add(A, word_stream(WHOLE, cut_after=40))
    fake.add(B, word_stream(WHOLE, model="mb"))
    text, _, error = stream(client, "declared", "regen-2")
    assert error is None and text == "".join(WHOLE)
    (only,) = fake.received(B)
    assert not has_prefill(only) and only.json()["messages"] == MSGS
    assert outcomes(access_line(router, "regen-2"))[1:] == [("b/mb", "regenerated")]


def test_without_a_target_that_continues_the_client_gets_the_original_failure(
    client: openai.OpenAI, fake: FakeUpstream
) -> None:
    fake.add(A, word_stream(WHOLE, cut_after=40))
    text, _, error = stream(client, "refusing", "regen-3")
    assert text == "".join(WHOLE[:40])
    assert isinstance(error, openai.APIError) and "upstream 'a'" in error.message
    assert not fake.received(B)  # never sent a prefill it cannot take


@pytest.mark.parametrize(
    "regenerated",
    [
        words(60, stem="x"),  # another answer from the first word
        [*WHOLE[:25], *words(35, first=26, stem="z")],  # departs before the cut
        WHOLE[:30],  # ends before it has reproduced the text sent
    ],
    ids=["other-text", "departs-midway", "ends-early"],
)
def test_a_regeneration_that_departs_ends_with_the_original_failure_never_mixed_text(
    regenerated: list[str], client: openai.OpenAI, fake: FakeUpstream, router: Any
) -> None:
    fake.add(A, word_stream(WHOLE, cut_after=40))
    fake.add(B, word_stream(regenerated, model="mb"))
    request_id = f"regen-differs-{regenerated[-1].strip()}-{len(regenerated)}"
    text, _, error = stream(client, "regen", request_id)
    assert text == "".join(WHOLE[:40])  # what the client had, and nothing else
    assert isinstance(error, openai.APIError)
    assert "upstream 'a'" in error.message and "regenerated" not in error.message
    assert len(fake.received(B)) == 1
    (_, regeneration) = outcomes(access_line(router, request_id))
    assert regeneration[1].endswith("regenerated_answer_differs")


def test_regeneration_continues_past_the_cut_in_any_chunking(
    client: openai.OpenAI, fake: FakeUpstream
) -> None:
    """The regenerated answer is compared as text, not chunk by chunk."""
    fake.add(A, word_stream(WHOLE, cut_after=40))
    joined = "".join(WHOLE)
    pieces = [joined[i : i + 7] for i in range(0, len(joined), 7)]

    def answer(_: Received) -> Any:
        return word_stream(pieces, model="mb")

    fake.add(B, answer)
    text, _, error = stream(client, "regen", "regen-chunking")
    assert error is None and text == joined
