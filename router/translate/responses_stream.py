"""Chat-completion chunks as an OpenAI Responses event stream (`stream: true`).

Fed the chunks (dicts) of one streamed chat completion, `ResponsesStream` returns the SSE
frames (`event:` and `data:` lines, as OpenAI sends them) of the Responses stream:

    response.created, response.in_progress                       (on the first chunk)
    per item: response.output_item.added
        message:   response.content_part.added, response.output_text.delta … (or
                   response.refusal.delta …), response.output_text.done,
                   response.content_part.done
        reasoning: the same with response.reasoning_text.delta/.done (from chat's
                   `reasoning_content`, as OpenAI streams open-weight reasoning models)
        function_call: response.function_call_arguments.delta …, .done
    response.output_item.done
    response.completed, or response.incomplete (`length`, `content_filter`)   (`finish()`)
    response.failed                                                          (`fail()`)

Every event carries `sequence_number` (0, 1, …) and, below the item level, `item_id`,
`output_index` and `content_index`. Items follow each other, as OpenAI streams them: one is
added only once the one before it is done. A tool call's item opens once its name is known
(argument fragments before that are held) and streams its arguments as they come; a call
that begins while it is open (parallel calls, told apart by the chat `index`, their fragments
even interleaved) is held and sent whole, added, its arguments and done, once the open one
is done: when text follows or the stream ends.

On failure, `fail()` sends `response.failed`: the response, with the same id as
`response.created`, `status: "failed"`, `error: {code, message}` and the output so far. That
is what the `openai` SDK needs: its stream accumulator checks that the lifecycle events keep
one response id, passes `response.failed` to the caller, and `get_final_response()` then
raises, as it does for any stream without `response.completed`. A bare `error` event is not
sent: the SDK treats it as an ordinary event and it would leave the response unterminated.
Usage comes from the chunk that carries it (the request asks for one, see
`responses_request`); without it, the answer's size is estimated as the router does.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from router.errors import RouterError
from router.translate.common import HOLE, frame, new_id, template
from router.translate.responses_answer import (
    echo_fields,
    response_error,
    response_object,
    responses_usage,
    status_of,
)
from router.translate.responses_items import (
    PART_EVENTS,
    OpenText,
    call_item,
    call_snapshot,
    content_part,
)
from router.translate.tokens import ChatUsage
from router.translate.tool_calls import START, STREAM, ToolCall, ToolCalls
from router.upstream.normalize import answer_text


class ResponsesStream:
    """One Responses stream: `feed(chunk)` per chat chunk, then `finish()` or `fail(error)`;
    each returns the SSE bytes to send (possibly empty)."""

    def __init__(
        self,
        request: dict[str, Any],
        model: str,
        *,
        prompt_tokens: int = 0,
        echo: dict[str, Any] | None = None,
    ) -> None:
        """`request`: the Responses request (its settings are echoed; or pass `echo`, from
        `echo_fields`); `model`: reported until a chunk names one; `prompt_tokens`: the
        estimate reported if no usage arrives."""
        self.response_id = new_id("resp_")
        self._echo = echo if echo is not None else echo_fields(request)
        self._model = model
        self._created_at = int(time.time())
        self._prompt_tokens = prompt_tokens
        self._seq = 0
        self._out: list[bytes] = []
        self._begun = False
        self._ended = False
        self._output: list[dict[str, Any]] = []  # every item so far, as last sent
        self._text: OpenText | None = None
        self._calls = ToolCalls()  # function_call items, one at a time
        self._finish_reason: str | None = None
        self._usage: ChatUsage | None = None
        self._chars = 0

    def feed(self, chunk: dict[str, Any]) -> bytes:
        if self._ended:
            return b""
        if not self._begun:
            self._begin(chunk.get("model"), chunk.get("created"))
        usage = chunk.get("usage")
        if usage:
            self._usage = ChatUsage.read(usage)
        choices = chunk.get("choices")
        if choices:
            choice = choices[0]
            if not choice.get("index"):
                delta = choice.get("delta")
                if delta:
                    self._delta(delta)
                if choice.get("finish_reason"):
                    self._finish_reason = choice["finish_reason"]
        return self._flush()

    def finish(self) -> bytes:
        """The end of the chat stream: close what is open and complete the response."""
        if self._ended:
            return b""
        if not self._begun:
            self._begin(None, None)
        status, reason = status_of(self._finish_reason)
        self._close_all("incomplete" if reason else "completed")
        usage = self._usage or ChatUsage.estimate(self._prompt_tokens, self._chars)
        response = self._response(status, self._output, responses_usage(usage), reason)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        self._emit({"type": kind, "response": response})
        self._ended = True
        return self._flush()

    def fail(self, error: RouterError) -> bytes:
        """A failure mid-stream: `response.failed`, with what was produced so far."""
        if self._ended:
            return b""
        if not self._begun:
            self._begin(None, None)
        output = list(self._output)
        if self._text is not None:
            output[self._text.index] = self._text.snapshot("incomplete")
        for call in self._calls.calls.values():
            if call.index >= 0 and not call.done:
                output[call.index] = call_snapshot(call, "incomplete")
        usage = responses_usage(self._usage) if self._usage else None
        response = self._response("failed", output, usage, None, response_error(error))
        self._emit({"type": "response.failed", "response": response})
        self._ended = True
        return self._flush()

    def _delta(self, delta: dict[str, Any]) -> None:
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning and isinstance(reasoning, str):
            self._text_delta("reasoning", "reasoning_text", reasoning)
        content = delta.get("content")
        if type(content) is list:  # parts, as some servers send them: their text
            content = answer_text(content)
        if content and isinstance(content, str):
            self._text_delta("message", "output_text", content)
        refusal = delta.get("refusal")
        if refusal and isinstance(refusal, str):
            self._text_delta("message", "refusal", refusal)
        calls = delta.get("tool_calls")
        if calls:
            for call in calls:
                self._call_delta(call)

    def _text_delta(self, kind: str, part: str, text: str) -> None:
        self._chars += len(text)
        item = self._text
        if item is None or item.kind != kind:
            self._close_all("completed")
            prefix = "msg_" if kind == "message" else "rs_"
            item = self._text = OpenText(kind, new_id(prefix), len(self._output))
            self._added(item.snapshot("in_progress"))
        if item.part != part:
            if item.part is not None:
                self._close_part(item)
            item.part = part
            self._emit(self._at(item, "response.content_part.added", content_part(part, "")))
            event = self._at(item, PART_EVENTS[part][0], None, delta=HOLE)
            if part == "output_text":
                event["logprobs"] = []
            event["sequence_number"] = HOLE
            item.delta_frame = template(event)
        item.pieces.append(text)
        self._emit_delta(item.delta_frame, text)

    def _call_delta(self, delta: dict[str, Any]) -> None:
        call, new, arguments = self._calls.take(delta)
        if call is None:
            return
        if new and self._text is not None:  # a message or reasoning item ends where a call begins
            self._close_text("completed")
        self._chars += len(arguments)
        step = self._calls.step(call, arguments)
        if step == STREAM:
            self._arguments(call, arguments)
        elif step == START:
            self._open_call(call)

    def _open_call(self, call: ToolCall) -> None:
        """Add `call`'s item, with the argument fragments it has so far."""
        call.item_id = new_id("fc_")
        call.call_id = call.call_id or new_id("call_")
        call.index = len(self._output)
        self._added(call_item(call.item_id, "in_progress", call.call_id, call.name, ""))
        if call.pieces:
            self._arguments(call, "".join(call.pieces))

    def _close_call(self, call: ToolCall, status: str) -> None:
        call.done = True
        self._emit(
            {
                "type": "response.function_call_arguments.done",
                "item_id": call.item_id,
                "output_index": call.index,
                "name": call.name,
                "arguments": "".join(call.pieces),
            }
        )
        self._item_done(call.index, call_snapshot(call, status))

    def _close_all(self, status: str) -> None:
        """Close the open item, then send the calls held meanwhile, each whole."""
        if self._text is not None:
            self._close_text(status)
        for call, started in self._calls.rest():
            if not started:
                self._open_call(call)
            self._close_call(call, status)

    def _close_part(self, item: OpenText) -> None:
        kind = item.part
        assert kind is not None
        text = "".join(item.pieces)
        _, done, field = PART_EVENTS[kind]
        event = self._at(item, done, None, **{field: text})
        if kind == "output_text":
            event["logprobs"] = []
        self._emit(event)
        part = content_part(kind, text)
        self._emit(self._at(item, "response.content_part.done", part))
        item.parts.append(part)
        item.part = None
        item.pieces = []

    def _close_text(self, status: str) -> None:
        item = self._text
        assert item is not None
        if item.part is not None:
            self._close_part(item)
        self._text = None
        self._item_done(item.index, item.snapshot(status))

    # -- events ---------------------------------------------------------------------------

    def _begin(self, model: Any, created: Any) -> None:
        self._begun = True
        if isinstance(model, str) and model:
            self._model = model
        if type(created) is int:
            self._created_at = created
        for kind in ("response.created", "response.in_progress"):
            self._emit({"type": kind, "response": self._response("in_progress", [], None, None)})

    def _response(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None,
        reason: str | None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return response_object(
            self._echo,
            response_id=self.response_id,
            created_at=self._created_at,
            model=self._model,
            status=status,
            output=output,
            usage=usage,
            incomplete_reason=reason,
            error=error,
        )

    def _added(self, item: dict[str, Any]) -> None:
        self._output.append(item)
        index = len(self._output) - 1
        self._emit({"type": "response.output_item.added", "output_index": index, "item": item})

    def _item_done(self, index: int, item: dict[str, Any]) -> None:
        self._output[index] = item
        self._emit({"type": "response.output_item.done", "output_index": index, "item": item})

    def _arguments(self, call: ToolCall, delta: str) -> None:
        if not call.delta_frame:
            event = {
                "type": "response.function_call_arguments.delta",
                "item_id": call.item_id,
                "output_index": call.index,
                "delta": HOLE,
                "sequence_number": HOLE,
            }
            call.delta_frame = template(event)
        self._emit_delta(call.delta_frame, delta)

    @staticmethod
    def _at(
        item: OpenText, kind: str, part: dict[str, Any] | None, **fields: Any
    ) -> dict[str, Any]:
        """An event about `item`'s open content part (`part`: the part it carries)."""
        event = {
            "type": kind,
            "item_id": item.item_id,
            "output_index": item.index,
            "content_index": len(item.parts),
            **fields,
        }
        if part is not None:
            event["part"] = part
        return event

    def _emit(self, event: dict[str, Any]) -> None:
        event["sequence_number"] = self._seq
        self._seq += 1
        self._out.append(frame(event))

    def _emit_delta(self, pieces: list[bytes], delta: str) -> None:
        """A delta event from its template: the text, then the sequence number."""
        start, middle, end = pieces
        self._out.append(start + orjson.dumps(delta) + middle + str(self._seq).encode() + end)
        self._seq += 1

    def _flush(self) -> bytes:
        if not self._out:
            return b""
        out = b"".join(self._out)
        self._out.clear()
        return out
