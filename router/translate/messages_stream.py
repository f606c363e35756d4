"""Chat-completion chunks as an Anthropic Messages event stream (`stream: true`).

Fed the chunks (dicts) of one streamed chat completion, `MessagesStream` returns the SSE
frames Anthropic sends, each with its `event:` line (the `anthropic` SDK skips frames
without one):

    message_start (content empty, usage with the prompt estimate), ping   (first chunk)
    content_block_start, content_block_delta …, content_block_stop       (per block)
        text      ← `delta.content` (and `delta.refusal`): text_delta
        thinking  ← `delta.reasoning_content` / `delta.reasoning`: thinking_delta; only
                    when the request enabled thinking (dropped otherwise), with an empty
                    signature since the upstream gives none
        tool_use  ← `delta.tool_calls`: opened once the call's name is known (argument
                    fragments before that are held), then input_json_delta
    message_delta (stop_reason, stop_sequence, usage), message_stop         (`finish()`)
    error (Anthropic's error body)                                          (`fail()`)

Blocks follow each other, as Anthropic's own streams do: one starts only once the one before
it has stopped. The first tool call to be named streams its arguments as they come; a tool
call that begins while it is open (parallel calls, whose fragments find theirs by the chat
`index`, even interleaved) is held and sent whole, start, arguments and stop, once the open
one stops: when text follows or the stream ends, the moment a client can act on any call. A
text or thinking block closes when another block starts.
`message_delta` waits for `finish()` so that it carries the usage chunk, which comes after
the finish reason; without one, usage is estimated as the router does.
"""

from __future__ import annotations

from typing import Any

import orjson

from router.errors import RouterError
from router.translate.common import HOLE, frame, new_id, template
from router.translate.messages_answer import messages_usage, stop_reason, stop_sequences
from router.translate.messages_errors import anthropic_error_frame
from router.translate.messages_request import show_thinking
from router.translate.tokens import ChatUsage
from router.translate.tool_calls import START, STREAM, ToolCall, ToolCalls
from router.upstream.normalize import answer_text

_PING = frame({"type": "ping"})
_STOP = frame({"type": "message_stop"})


class MessagesStream:
    """One Messages stream: `feed(chunk)` per chat chunk, then `finish()` or `fail(error)`;
    each returns the SSE bytes to send (possibly empty)."""

    def __init__(self, request: dict[str, Any], model: str, *, prompt_tokens: int = 0) -> None:
        """`request`: the Messages request; `model`: reported until a chunk names one;
        `prompt_tokens`: the input estimate for `message_start` and for a missing usage."""
        self.message_id = new_id("msg_")
        self._model = model
        self._thinking = show_thinking(request)
        self._stops = stop_sequences(request)
        self._prompt_tokens = prompt_tokens
        self._out: list[bytes] = []
        self._begun = False
        self._ended = False
        self._blocks = 0  # content blocks started
        self._open: str | None = None  # the open text or thinking block's type
        self._tools = ToolCalls()  # tool_use blocks, one at a time
        self._delta_frame: list[bytes] = []  # the open text or thinking block's, from `template`
        self._finish: dict[str, Any] = {}
        self._refused = False
        self._usage: ChatUsage | None = None
        self._chars = 0

    def feed(self, chunk: dict[str, Any]) -> bytes:
        if self._ended:
            return b""
        if not self._begun:
            self._begin(chunk.get("model"))
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
                    self._finish = choice
        return self._flush()

    def finish(self) -> bytes:
        """The end of the chat stream: close the blocks, then message_delta and message_stop."""
        if self._ended:
            return b""
        if not self._begun:
            self._begin(None)
        self._close_all()
        reason, sequence = stop_reason(self._finish, self._stops)
        if reason == "end_turn" and self._refused:
            reason = "refusal"
        usage = self._usage or ChatUsage.estimate(self._prompt_tokens, self._chars)
        self._emit(
            {
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": sequence},
                "usage": messages_usage(usage),
            }
        )
        self._out.append(_STOP)
        self._ended = True
        return self._flush()

    def fail(self, error: RouterError) -> bytes:
        """A failure mid-stream: Anthropic's `error` event; nothing follows it."""
        if self._ended:
            return b""
        if not self._begun:
            self._begin(None)
        self._out.append(anthropic_error_frame(error))
        self._ended = True
        return self._flush()

    def _begin(self, model: Any) -> None:
        self._begun = True
        if isinstance(model, str) and model:
            self._model = model
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": self._prompt_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 0,
            },
        }
        self._emit({"type": "message_start", "message": message})
        self._out.append(_PING)

    def _delta(self, delta: dict[str, Any]) -> None:
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning and isinstance(reasoning, str) and self._thinking:
            self._text("thinking", reasoning)
        content = delta.get("content")
        if type(content) is list:  # parts, as some servers send them: their text
            content = answer_text(content)
        if content and isinstance(content, str):
            self._text("text", content)
        refusal = delta.get("refusal")
        if refusal and isinstance(refusal, str):
            self._refused = True
            self._text("text", refusal)
        calls = delta.get("tool_calls")
        if calls:
            for call in calls:
                self._tool_delta(call)

    def _text(self, kind: str, text: str) -> None:
        self._chars += len(text)
        if self._open != kind:
            self._close_all()
            self._open = kind
            block = (
                {"type": "text", "text": ""}
                if kind == "text"
                else {"type": "thinking", "thinking": "", "signature": ""}
            )
            self._start(block)
            if kind == "text":
                delta = {"type": "text_delta", "text": HOLE}
            else:
                delta = {"type": "thinking_delta", "thinking": HOLE}
            event = {"type": "content_block_delta", "index": self._blocks - 1, "delta": delta}
            self._delta_frame = template(event)
        start, end = self._delta_frame
        self._out.append(start + orjson.dumps(text) + end)

    def _tool_delta(self, delta: dict[str, Any]) -> None:
        tool, new, arguments = self._tools.take(delta)
        if tool is None:
            return
        if new and self._open is not None:  # a text or thinking block ends where a call begins
            self._stop(self._blocks - 1)
            self._open = None
        self._chars += len(arguments)
        step = self._tools.step(tool, arguments)
        if step == STREAM:
            self._json(tool, arguments)
        elif step == START:
            self._start_tool(tool)

    def _start_tool(self, tool: ToolCall) -> None:
        """Start `tool`'s block, with the arguments it has so far."""
        tool.index = self._blocks
        block = {
            "type": "tool_use",
            "id": tool.call_id or new_id("toolu_"),
            "name": tool.name,
            "input": {},
        }
        self._start(block)
        if tool.pieces:
            self._json(tool, "".join(tool.pieces))

    def _json(self, tool: ToolCall, partial: str) -> None:
        if not tool.delta_frame:
            delta = {"type": "input_json_delta", "partial_json": HOLE}
            event = {"type": "content_block_delta", "index": tool.index, "delta": delta}
            tool.delta_frame = template(event)
        start, end = tool.delta_frame
        self._out.append(start + orjson.dumps(partial) + end)

    def _start(self, block: dict[str, Any]) -> None:
        self._emit({"type": "content_block_start", "index": self._blocks, "content_block": block})
        self._blocks += 1

    def _stop(self, index: int) -> None:
        self._emit({"type": "content_block_stop", "index": index})

    def _close_all(self) -> None:
        """Stop the open block, then send the tool calls held meanwhile, each whole."""
        if self._open is not None:
            self._stop(self._blocks - 1)
            self._open = None
        for tool, started in self._tools.rest():
            if not started:
                self._start_tool(tool)
            self._stop(tool.index)

    def _emit(self, event: dict[str, Any]) -> None:
        self._out.append(frame(event))

    def _flush(self) -> bytes:
        if not self._out:
            return b""
        out = b"".join(self._out)
        self._out.clear()
        return out
