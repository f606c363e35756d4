"""Issue 4 matrix, streaming: failures before the first byte are retried or fall back
transparently; after it, the stream ends with an error event or is continued elsewhere."""

from __future__ import annotations

import time

import openai
import pytest

from router.testing import chat_chunks, closed_after_test, json_reply, sse_reply

A = "/a/v1/chat/completions"
B = "/b/v1/chat/completions"
MSGS = [{"role": "user", "content": "hi"}]
CONFIG = """
server: {{auth: none}}
providers:
  a:
    plugin: openai
    base_url: "{url}/a/v1"
    timeouts: {{first_token: 0.5, idle: 0.4, total: 5}}
  b:
    plugin: openai
    base_url: "{url}/b/v1"
    timeouts: {{first_token: 0.5, idle: 0.4, total: 5}}
  patient:
    plugin: openai
    base_url: "{url}/a/v1"
    timeouts: {{idle: 5}}
models:
  chat:
    targets: [{{provider: a, model: ma}}, {{provider: b, model: mb}}]
    retries: {{attempts: 1, backoff_initial: 0.1, deadline: 8}}
  resume:
    targets: [{{provider: a, model: ma}}, {{provider: b, model: mb}}]
    stream_recovery: continue
  slow:
    targets: [{{provider: patient, model: ma}}]
  primary:
    targets: [{{provider: a, model: ma}}]
    retries: {{attempts: 0}}
    fallbacks: [second]
  second:
    targets: [{{provider: b, model: mb}}]
"""


@pytest.fixture
def client(fake_upstream, router_server):
    server = router_server(CONFIG.format(url=fake_upstream.url))
    return closed_after_test(
        openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=15)
    )


def stream(client, model="chat", usage=False):
    """(text, chunks, error or None, seconds) of one streamed request, read to its end."""
    started = time.monotonic()
    options = {"include_usage": True} if usage else None
    kwargs = {"stream_options": options} if options else {}
    chunks, error = [], None
    try:
        for chunk in client.chat.completions.create(
            model=model, messages=MSGS, stream=True, **kwargs
        ):
            chunks.append(chunk)
    except openai.APIError as exc:
        error = exc
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks, error, time.monotonic() - started


def test_slow_first_token_falls_back_within_the_first_token_timeout(client, fake_upstream):
    # Headers and a comment arrive at once; the first chunk would take 3 s.
    fake_upstream.add(A, sse_reply([b": ping\n\n", *chat_chunks(["late"])], delay=3))
    fake_upstream.add(B, sse_reply(chat_chunks(["on ", "time"], model="mb")))
    text, chunks, error, took = stream(client)
    assert error is None and text == "on time"
    assert {c.model for c in chunks} == {"mb"}
    assert len(fake_upstream.received(A)) == 1 and len(fake_upstream.received(B)) == 1
    assert 0.35 <= took < 2.5  # first_token 0.5 s, or the 0.4 s idle gap after the ping


def test_stream_cut_mid_answer_ends_with_an_error_event_not_a_success(client, fake_upstream):
    fake_upstream.add(A, sse_reply(chat_chunks(["Hel", "lo", " wor", "ld"]), drop_after_frames=3))
    text, _, error, took = stream(client)
    assert text == "Hello"  # what was relayed before the cut
    assert isinstance(error, openai.APIError)  # never presented as a finished answer
    assert "upstream 'a'" in error.message
    assert len(fake_upstream.received(A)) == 1 and not fake_upstream.received(B)
    assert took < 2


def test_stream_stall_ends_after_the_idle_timeout(client, fake_upstream):
    # The answer begins at once ("Hel"), then the upstream goes silent for 3 s.
    fake_upstream.add(A, sse_reply(chat_chunks(["Hel", "lo"])[1:], delay=3))
    text, _, error, took = stream(client)
    assert text == "Hel"
    assert isinstance(error, openai.APIError) and "stalled" in error.message
    assert 0.35 <= took < 2  # idle is 0.4 s, not the 3 s gap
    assert len(fake_upstream.received(A)) == 1


def test_malformed_first_chunk_is_retried_transparently(client, fake_upstream):
    fake_upstream.add(A, sse_reply([b"data: {not json\n\n"]), sse_reply(chat_chunks(["ok"])))
    text, _, error, _ = stream(client)
    assert error is None and text == "ok"
    assert len(fake_upstream.received(A)) == 2


def test_stream_headers_name_the_attempt_that_answered(client, fake_upstream):
    """A stream's answer is prepared while its upstream works on the first token; when that
    attempt then fails, the answer's headers describe the attempt that did answer."""
    fake_upstream.add(A, sse_reply([b"data: {not json\n\n"]))  # 200, then garbage
    fake_upstream.add(B, sse_reply(chat_chunks(["from ", "b"], model="mb")))
    raw = client.chat.completions.with_raw_response.create(
        model="primary", messages=MSGS, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "from b"
    assert len(fake_upstream.received(A)) == 1 and len(fake_upstream.received(B)) == 1
    assert raw.headers["x-router-model"] == "second"
    assert raw.headers["x-router-provider"] == "b"
    assert raw.headers["x-router-attempts"] == "2"


def test_malformed_chunk_after_commit_is_an_error_event_and_the_router_lives_on(
    client, fake_upstream
):
    frames = chat_chunks(["Hel", "lo"])
    # Paced, so that the good chunks are relayed (committed) before the bad one arrives.
    fake_upstream.add(A, sse_reply([*frames[:2], b"data: {oops\n\n", *frames[2:]], delay=0.2))
    text, _, error, _ = stream(client)
    assert text == "Hel"
    assert isinstance(error, openai.APIError) and "not JSON" in error.message
    fake_upstream.add(A, sse_reply(chat_chunks(["still", " here"])))
    text, _, error, _ = stream(client)
    assert error is None and text == "still here"


def test_missing_done_is_finished_promptly_with_usage(client, fake_upstream):
    fake_upstream.add(A, sse_reply(chat_chunks(["all", " there"], usage=None, done=False)))
    text, chunks, error, took = stream(client, "slow", usage=True)
    assert error is None and text == "all there"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= 1
    assert took < 2.5  # not the 5 s idle timeout


def test_missing_done_before_any_finish_is_an_error_event(client, fake_upstream):
    frames = chat_chunks(["half"], usage=None, done=False)[:-1]  # no finish_reason either
    fake_upstream.add(A, sse_reply(frames))
    text, _, error, _ = stream(client, "slow")
    assert text == "half"
    assert isinstance(error, openai.APIError) and "mid-answer" in error.message


def test_failed_attempts_do_not_count_usage(client, fake_upstream):
    fake_upstream.add(A, json_reply({"error": {"message": "down"}}, 503))
    fake_upstream.set_default(A, json_reply({"error": {"message": "down"}}, 503))
    fake_upstream.add(B, sse_reply(chat_chunks(["ok"], model="mb", usage=(11, 1))))
    text, chunks, error, _ = stream(client, usage=True)
    assert error is None and text == "ok"
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (11, 1)


def test_broken_stream_is_continued_by_the_next_target(client, fake_upstream):
    fake_upstream.add(A, sse_reply(chat_chunks(["Hel", "lo", " wor", "ld"]), drop_after_frames=3))

    def continue_answer(received):
        messages = received.json()["messages"]
        assert messages[:-1] == MSGS
        assert messages[-1] == {"role": "assistant", "content": "Hello"}
        return sse_reply(chat_chunks([" wor", "ld"], model="mb", usage=(9, 2)))

    fake_upstream.add(B, continue_answer)
    text, chunks, error, took = stream(client, "resume", usage=True)
    assert error is None
    assert text == "Hello world"  # one whole answer
    assert len({c.id for c in chunks}) == 1
    roles = [c.choices[0].delta.role for c in chunks if c.choices and c.choices[0].delta.role]
    assert roles == ["assistant"]
    # The client's usage covers the text it received: the continuation's 9 + 2 tokens, of
    # which the prefilled "Hello" (estimated) is the client's completion, not its prompt.
    usage = chunks[-1].usage
    assert usage.total_tokens == 11 and usage.completion_tokens > 2
    assert usage.prompt_tokens + usage.completion_tokens == 11
    assert {c.model for c in chunks} == {"up-model"}  # the model that began the answer
    assert len(fake_upstream.received(A)) == 1 and len(fake_upstream.received(B)) == 1
    assert took < 2.5


def test_refused_continuation_gives_the_original_failure(client, fake_upstream):
    fake_upstream.add(A, sse_reply(chat_chunks(["Hel", "lo", " wor", "ld"]), drop_after_frames=3))
    refusal = {"error": {"message": "assistant prefill is not supported", "type": "bad"}}
    fake_upstream.add(B, json_reply(refusal, 400))
    text, _, error, _ = stream(client, "resume")
    assert text == "Hello"
    assert isinstance(error, openai.APIError)
    assert "upstream 'a'" in error.message and "prefill" not in error.message
    assert len(fake_upstream.received(B)) == 1


def test_content_filter_mid_stream_is_never_continued_elsewhere(client, fake_upstream):
    frames = chat_chunks(["Hel", "lo"])
    stop = {"error": {"message": "flagged by the content filter", "code": "content_filter"}}
    fake_upstream.add(A, sse_reply([*frames[:2], stop], delay=0.2))
    fake_upstream.set_default(B, sse_reply(chat_chunks(["should not"])))
    text, _, error, _ = stream(client, "resume")
    assert text == "Hel"
    assert isinstance(error, openai.APIError) and "content filter" in error.message
    assert not fake_upstream.received(B)


def test_mock_provider_demonstrates_continuation(router_server):
    config = """
    server: {auth: none}
    providers:
      flaky: {plugin: mock, settings: {fail_after_chunks: 3, words: 9}}
      steady: {plugin: mock, settings: {words: 9}}
    models:
      chat:
        targets: [{provider: flaky, model: m}, {provider: steady, model: m}]
        stream_recovery: continue
      whole:
        targets: [{provider: steady, model: m}]
    """
    server = router_server(config)
    client = closed_after_test(
        openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=15)
    )
    reference = client.chat.completions.create(model="whole", messages=MSGS)
    text, _, error, _ = stream(client, "chat")
    assert error is None
    assert text == reference.choices[0].message.content
    assert len(text.split()) == 9
