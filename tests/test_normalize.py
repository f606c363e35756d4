"""Every provider's JSON answer is completed to what the OpenAI schema requires, in the core."""

from __future__ import annotations

import copy

from router.types import Operation
from router.upstream.normalize import complete_answer

COMPLETE = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "hi", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


def test_a_complete_answer_is_left_alone() -> None:
    data = copy.deepcopy(COMPLETE)
    assert complete_answer(Operation.CHAT, data, "up") is False
    assert data == COMPLETE


def test_missing_refusal_logprobs_and_finish_reason_are_added_as_null() -> None:
    # vLLM-style servers (Telkom, Telnyx) and Tokligence leave these out.
    bare = {"choices": [{"message": {"role": "assistant", "content": "x", "reasoning": "r"}}]}
    assert complete_answer(Operation.CHAT, bare, "up-model") is True
    choice = bare["choices"][0]
    assert choice["index"] == 0 and choice["logprobs"] is None and choice["finish_reason"] is None
    assert choice["message"] == {
        "role": "assistant",
        "content": "x",
        "reasoning": "r",
        "refusal": None,
    }
    assert bare["object"] == "chat.completion" and bare["model"] == "up-model"
    assert isinstance(bare["created"], int) and bare["id"].startswith("chatcmpl-")


def test_present_values_are_never_changed() -> None:
    data = copy.deepcopy(COMPLETE)
    data["choices"][0]["message"]["refusal"] = "I can't help with that."
    del data["choices"][0]["logprobs"]
    assert complete_answer(Operation.CHAT, data, "other") is True
    assert data["choices"][0]["message"]["refusal"] == "I can't help with that."
    assert data["model"] == "m"


def test_usage_total_is_computed_when_missing() -> None:
    data = copy.deepcopy(COMPLETE)
    data["usage"] = {"prompt_tokens": 3, "completion_tokens": 4}
    assert complete_answer(Operation.CHAT, data, "m") is True
    assert data["usage"]["total_tokens"] == 7


def test_completions_and_embeddings() -> None:
    text = {"id": "c", "created": 1, "model": "m", "choices": [{"text": "x", "index": 0}]}
    assert complete_answer(Operation.COMPLETIONS, text, "m") is True
    assert text["object"] == "text_completion"
    assert text["choices"][0]["logprobs"] is None and text["choices"][0]["finish_reason"] is None
    vectors = {"data": [], "model": "e", "usage": {"prompt_tokens": 2}}
    assert complete_answer(Operation.EMBEDDINGS, vectors, "e") is True
    assert vectors["object"] == "list" and vectors["usage"]["total_tokens"] == 2
