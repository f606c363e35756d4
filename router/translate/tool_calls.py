"""A chat stream's tool calls as the Messages and Responses streams send them: one at a time.

A chat stream may interleave the argument fragments of parallel tool calls, each naming its
call by `index`; a Messages stream's content blocks and a Responses stream's output items
come one after another, each started only once the one before it has stopped. So the first
call whose name is known goes live (its block or item starts, its fragments stream as they
come) and the others gather theirs, held until the live one stops, then go out whole. Pure
bookkeeping, shared by both streams: each says what starting, streaming and stopping a call
sends.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class ToolCall:
    """One call: its id and name as they came, its argument fragments; `index` is its block's
    or item's once started, `item_id` a Responses item's id."""

    call_id: str
    name: str
    index: int = -1
    item_id: str = ""
    pieces: list[str] = field(default_factory=list)
    done: bool = False
    delta_frame: list[bytes] = field(default_factory=list)  # its delta event, from `template`


# What a fragment asks of the stream (`ToolCalls.step`).
HOLD, START, STREAM = 0, 1, 2


class ToolCalls:
    """The tool calls of one stream, by their chat index, and the one live now."""

    __slots__ = ("calls", "live")

    def __init__(self) -> None:
        self.calls: dict[int, ToolCall] = {}
        self.live: ToolCall | None = None

    def take(self, delta: dict[str, Any]) -> tuple[ToolCall | None, bool, str]:
        """One tool-call delta: (its call, whether the call is new, the argument fragment it
        adds, "" for none); no call for a fragment of a call already stopped, which has
        nowhere left to go."""
        index = delta.get("index") or 0
        if type(index) is not int:
            index = 0
        function = delta.get("function") or {}
        call = self.calls.get(index)
        new = call is None
        if call is None:
            call = self.calls[index] = ToolCall(delta.get("id") or "", function.get("name") or "")
        elif call.done:
            return None, False, ""
        else:
            call.call_id = call.call_id or delta.get("id") or ""
            call.name = call.name or function.get("name") or ""
        arguments = function.get("arguments")
        if not arguments or not isinstance(arguments, str):
            return call, new, ""
        call.pieces.append(arguments)
        return call, new, arguments

    def step(self, call: ToolCall, arguments: str) -> int:
        """What to send for `call` now: STREAM `arguments` (it is live), START it (the first
        with a name while none is live: it is live from now on, its fragments so far sent
        with its start), or HOLD."""
        if call is self.live:
            return STREAM if arguments else HOLD
        if self.live is None and call.name:
            self.live = call
            return START
        return HOLD

    def rest(self) -> Iterator[tuple[ToolCall, bool]]:
        """When the calls end (text follows, or the stream ends), the calls to stop, each
        marked done: the live one (True: started already), then each held call with a name
        (False: to start and stop whole). A call whose name never came is dropped."""
        live, self.live = self.live, None
        if live is not None and not live.done:
            live.done = True
            yield live, True
        for call in self.calls.values():
            if not call.done:
                call.done = True
                if call.name:
                    yield call, False
