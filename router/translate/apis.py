"""The APIs served by translation to chat completions, one object each for the endpoint.

An `Api` is what the core calls to serve one API through the routing graph: the chat request
for a client's body, the client's answer from a chat answer, the stream translator, the
API's own error shape, and, for targets that serve the API natively (their requests and
answers pass untranslated), what the core must know of that API's own stream: which events
come before the answer begins, which end it, which report a failure, and where its usage is.
Every method is pure; the operations (`router.operations`) hold one `Api` each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from router.errors import RouterError
from router.translate.common import frame
from router.translate.messages_answer import chat_to_message
from router.translate.messages_errors import anthropic_error, anthropic_error_frame
from router.translate.messages_request import messages_to_chat
from router.translate.messages_stream import MessagesStream
from router.translate.responses_answer import chat_to_response, response_error
from router.translate.responses_request import responses_to_chat
from router.translate.responses_stream import ResponsesStream
from router.translate.tokens import (
    count_tokens,
    input_tokens,
    usage_of_message,
    usage_of_response,
)

if TYPE_CHECKING:
    from router.upstream.relay import Frames


class Api:
    """An API translated to chat completions. Subclasses fill in each member."""

    #: Answered by the router itself (`local_answer`), never sent upstream.
    local = False
    #: Native stream events sent before the answer begins (held back until it does, so that
    #: a failure up to there can still be retried elsewhere).
    preamble: frozenset[str] = frozenset()
    terminal: frozenset[str] = frozenset()  # native stream events that end a whole answer
    failure: frozenset[str] = frozenset()  # native stream events that report a failure
    usage_events: frozenset[str] = frozenset()  # native stream events that carry usage

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """The chat request for `body`; raises InvalidRequest naming a field it cannot take.

        Without `stream_options`: the core asks for usage in streams where the target's
        provider takes that option (`Provider.stream_usage`), as for any chat request."""
        raise NotImplementedError

    def answer(self, answer: dict[str, Any], body: dict[str, Any], prompt_tokens: int) -> bytes:
        """The client's answer to `body` from a chat completion (`prompt_tokens`: the
        estimate reported when the answer has no usage)."""
        raise NotImplementedError

    def stream(self, body: dict[str, Any], model: str, prompt_tokens: int) -> Frames:
        """A stream translator for one attempt's chat chunks."""
        raise NotImplementedError

    def error(self, error: RouterError) -> tuple[int, bytes]:
        """(status, body) of an error answer in this API's shape."""
        return error.status, error.to_json()

    def usage(self, counts: Any) -> dict[str, Any] | None:
        """The chat usage for this API's `usage` object (a native target's)."""
        raise NotImplementedError

    def event_counts(self, name: str, payload: dict[str, Any]) -> Any:
        """The `usage` object in a native stream's `usage_events` event: each one's counts
        replace those before (a later event may repeat a count or leave it out)."""
        raise NotImplementedError

    def native_failure(self, error: RouterError, events: int) -> bytes:
        """The event that ends a native stream which failed after `events` events."""
        raise NotImplementedError

    def local_answer(self, body: dict[str, Any]) -> bytes:
        raise NotImplementedError


def _without_stream_options(chat: dict[str, Any]) -> dict[str, Any]:
    chat.pop("stream_options", None)
    return chat


class ResponsesApi(Api):
    """OpenAI's Responses API (`POST /v1/responses`); errors keep the OpenAI envelope."""

    preamble = frozenset(("response.created", "response.in_progress"))
    terminal = frozenset(("response.completed", "response.incomplete"))
    failure = frozenset(("error", "response.failed"))
    usage_events = terminal

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        return _without_stream_options(responses_to_chat(body))

    def answer(self, answer: dict[str, Any], body: dict[str, Any], prompt_tokens: int) -> bytes:
        return orjson.dumps(chat_to_response(answer, body, prompt_tokens=prompt_tokens))

    def stream(self, body: dict[str, Any], model: str, prompt_tokens: int) -> ResponsesStream:
        return ResponsesStream(body, model, prompt_tokens=prompt_tokens)

    def usage(self, counts: Any) -> dict[str, Any] | None:
        return usage_of_response(counts)

    def event_counts(self, name: str, payload: dict[str, Any]) -> Any:
        response = payload.get("response")
        return response.get("usage") if isinstance(response, dict) else None

    def native_failure(self, error: RouterError, events: int) -> bytes:
        """The Responses stream's `error` event (its response id is the upstream's: the
        router does not read every event to know it)."""
        event = {"type": "error", **response_error(error), "param": None}
        return frame({**event, "sequence_number": events})


class MessagesApi(Api):
    """Anthropic's Messages API (`POST /v1/messages`), with Anthropic's error shape."""

    preamble = frozenset(("message_start", "ping"))
    terminal = frozenset(("message_stop",))
    failure = frozenset(("error",))
    usage_events = frozenset(("message_start", "message_delta"))

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        return _without_stream_options(messages_to_chat(body))

    def answer(self, answer: dict[str, Any], body: dict[str, Any], prompt_tokens: int) -> bytes:
        return orjson.dumps(chat_to_message(answer, body, prompt_tokens=prompt_tokens))

    def stream(self, body: dict[str, Any], model: str, prompt_tokens: int) -> MessagesStream:
        return MessagesStream(body, model, prompt_tokens=prompt_tokens)

    def error(self, error: RouterError) -> tuple[int, bytes]:
        status, body = anthropic_error(error)
        return status, orjson.dumps(body)

    def usage(self, counts: Any) -> dict[str, Any] | None:
        return usage_of_message(counts)

    def event_counts(self, name: str, payload: dict[str, Any]) -> Any:
        """`message_start` has the input counts, each `message_delta` the output so far."""
        if name == "message_start":
            message = payload.get("message")
            return message.get("usage") if isinstance(message, dict) else None
        return payload.get("usage")

    def native_failure(self, error: RouterError, events: int) -> bytes:
        return anthropic_error_frame(error)


class CountTokensApi(MessagesApi):
    """`POST /v1/messages/count_tokens`: the router's own estimate, the one its limits use."""

    local = True

    def local_answer(self, body: dict[str, Any]) -> bytes:
        return orjson.dumps(count_tokens(body))


class InputTokensApi(ResponsesApi):
    """`POST /v1/responses/input_tokens`: the router's own estimate, as `count_tokens`."""

    local = True

    def local_answer(self, body: dict[str, Any]) -> bytes:
        return orjson.dumps(input_tokens(body))


RESPONSES_API = ResponsesApi()
MESSAGES_API = MessagesApi()
COUNT_TOKENS_API = CountTokensApi()
INPUT_TOKENS_API = InputTokensApi()
