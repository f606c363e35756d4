"""Faults a real upstream shows, scripted for the fake upstream (`FakeUpstream`): answers of
numbered words cut after some of them, first tokens that take their time, and the refusal
of an assistant prefill with a real provider's 400 body.

    upstream.add(PATH, word_stream(words(60), cut_after=40))  # 40 words, then the line drops
    upstream.add(PATH, refusing_prefill(lambda r: word_stream(words(60))))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from router.testing.fake_upstream import Received, Reply, chat_chunks, json_reply, sse_reply

# Mistral's answer to a request ending in an assistant message without `prefix: true`.
PREFILL_REFUSAL = {
    "object": "error",
    "message": "Expected last role User or Tool (or Assistant with prefix True) for serving "
    "but got assistant",
    "type": "invalid_request_message_order",
    "param": None,
    "code": "3230",
}


def words(count: int, first: int = 1, stem: str = "w") -> list[str]:
    """`count` numbered words, each with its trailing space: `w1 `, `w2 `, ..."""
    return [f"{stem}{i} " for i in range(first, first + count)]


def word_stream(
    pieces: Sequence[str],
    *,
    model: str = "up-model",
    cut_after: int | None = None,
    first_token_delay: float = 0.0,
    prompt_tokens: int = 12,
) -> Reply:
    """A chat stream of `pieces`, one chunk each, reporting one completion token per piece.
    `cut_after`: the connection drops after that many pieces (no finish, no usage);
    `first_token_delay`: the headers and a comment come at once, the first chunk this many
    seconds later (a model that takes its time: the router's client sees nothing)."""
    frames = chat_chunks(pieces, model=model, usage=(prompt_tokens, len(pieces)))
    if first_token_delay:
        return sse_reply([b": thinking\n\n", *frames], second_frame_delay=first_token_delay)
    drop = None if cut_after is None else 1 + cut_after  # the role chunk, then the words
    return sse_reply(frames, drop_after_frames=drop)


def has_prefill(received: Received) -> bool:
    """Whether the request ends in an assistant message (asks to continue it)."""
    messages = received.json().get("messages") or [{}]
    return bool(messages[-1].get("role") == "assistant")


def refusing_prefill(answer: Callable[[Received], Reply]) -> Callable[[Received], Reply]:
    """A handler that refuses a prefill as Mistral does (400), and otherwise `answer`s."""

    def handle(received: Received) -> Reply:
        if has_prefill(received):
            return json_reply(PREFILL_REFUSAL, 400)
        return answer(received)

    return handle
