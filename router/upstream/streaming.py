"""Relaying one primed upstream stream to the client, chunk by chunk, as OpenAI SSE (or as
another API's frames), and accounting for what it relayed.

A failure after the first byte ends the stream with an error event, or hands it to the
route's recovery (`router.routing.recovery`): a truncated answer is never presented as a
success. `router.upstream.relay` opens and primes the stream this relays.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from router import errors
from router.observability import logs
from router.routing.breaker import record
from router.types import Attempt, Call, Operation, Target
from router.upstream import plugin_calls, sse
from router.upstream.sse import DONE_FRAME, SSEDecoder, encode
from router.upstream.transport import UpstreamStream
from router.upstream.usage import estimate_prompt_tokens, estimate_tokens
from router.upstream.verify import Verifier

log = logs.get_logger("router.streams")


def error_frame(error: errors.RouterError) -> sse.ErrorFrame:
    return sse.error_frame(error)  # an `ErrorFrame`: the stream's sender sees how it ended


def untranslatable(
    provider: str, exc: Exception, what: str = "a stream chunk"
) -> errors.MalformedResponse:
    """The error of a chunk (or answer: `what`) whose fields have types no translator expects
    (a `delta` that is a string, tool calls that are not objects): the upstream's malformed
    answer, logged with the exception so that a translator's own bug would show there too."""
    log.warning("untranslatable_answer", provider=provider, what=what, exc_info=exc)
    return errors.MalformedResponse(
        f"upstream '{provider}' sent {what} whose fields do not have a chat completion's types",
        provider=provider,
    )


Recover = Callable[["StreamRelay", errors.RouterError], AsyncIterator[bytes]]


class Frames(Protocol):
    """The client's frames of another API than chat's, made from one answer's chat chunks
    (`router.translate`'s stream translators): each call returns the bytes to send."""

    def feed(self, chunk: dict[str, Any]) -> bytes: ...

    def finish(self) -> bytes: ...

    def fail(self, error: errors.RouterError) -> bytes: ...


@dataclass(slots=True)
class Rescue:
    """What a stream that finishes a broken one (`router.routing.recovery`) keeps of it.

    `chars`: the completion characters the client already has; `shift`: the tokens of
    those that a continuation sends back as its prompt, and its usage then counts as
    completion (the client's usage covers the text it received, and its total is what the
    continuation used); `verifier`: a regeneration's check of the text already sent."""

    model: str | None
    chars: int
    shift: int = 0
    verifier: Verifier | None = None

    def usage(self, usage: dict[str, Any]) -> dict[str, Any]:
        if not self.shift:
            return usage
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if not isinstance(prompt, int) or not isinstance(completion, int):
            return usage
        moved = min(self.shift, prompt)
        return {**usage, "prompt_tokens": prompt - moved, "completion_tokens": completion + moved}


class StreamRelay:
    """Relays one upstream stream to the client, chunk by chunk, as OpenAI SSE."""

    def __init__(
        self,
        call: Call,
        target: Target,
        upstream: UpstreamStream,
        deadline: float,
        continues: str | None = None,
        frames: Frames | None = None,
        rescue: Rescue | None = None,
    ):
        self.call = call
        self.target = target
        self.provider = target.provider
        self.upstream = upstream
        self.deadline = deadline
        self.decoder = SSEDecoder(target.runtime.max_answer_bytes, target.runtime.name)
        self.pending: list[bytes] = []
        self.done = False  # [DONE] seen
        self.finished = False  # a finish_reason seen
        self.started = False  # content, a tool call, a finish_reason or usage seen
        self.usage_sent = False
        self.completion_chars = rescue.chars if rescue is not None else 0
        self.continues = continues
        self.chunk_id: str | None = continues
        # The `model` its chunks show: the first chunk's; a rescue's keeps the broken one's.
        self.model: str | None = rescue.model if rescue is not None else None
        self.rescue = rescue  # set when this stream finishes a broken one (`Rescue`)
        self.attempt: Attempt | None = None  # its entry in `call.attempts`
        # Set by the app when the route may continue a broken answer elsewhere: then the
        # answer so far is kept, and `recover` yields the frames that end the stream.
        self.recover: Recover | None = None
        self.text: list[str] | None = (
            [] if call.route.stream_recovery != "error" and call.op is Operation.CHAT else None
        )
        options = call.body.get("stream_options")
        self.client_wants_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        self.holding = False  # counted in `target.in_flight` (see `hold`)
        self.successor: StreamRelay | None = None  # the stream continuing this broken one
        self.frames = frames  # what the chunks become, when not chat's own SSE
        # What reads each event: the provider's own, or OpenAI's where the router made the
        # events (`router.upstream.whole`).
        self.parse = self.provider.transform_stream_event

    def hold(self) -> None:
        """Count the stream in its target's `in_flight` (what `least_busy` reads) until
        `close`: the attempt's own count ends when the primed stream is handed over, in the
        same step of the event loop, so the target never looks idle in between."""
        self.target.in_flight += 1
        self.holding = True

    def close(self) -> None:
        """Let go of the upstream connection and the target's count, and the continuation's:
        however the answer ends (finished, failed, client gone, never sent). Safe to call
        more than once; the count is given back once."""
        if self.holding:
            self.holding = False
            self.target.in_flight -= 1
        self.upstream.close()
        if self.successor is not None:
            self.successor.close()

    async def _next_bytes(self, priming: bool = False) -> bytes | None:
        """The next upstream read. While priming, the first-token timeout (around the whole
        priming) governs, not the idle gap: a model may think longer than it pauses; and
        since it ends no later than the total budget, no second timer runs for these reads
        (one timer less to arm and cancel before the first chunk goes out)."""
        idle = self.target.timeouts.idle
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise errors.UpstreamTimeout(
                f"upstream '{self.provider.name}' stream exceeded its total time budget",
                provider=self.provider.name,
            )
        upstream = self.upstream
        try:
            if priming:  # `open_stream`'s first-token timeout, never later than `left`, governs
                return await anext(upstream.chunks, None)
            return await upstream.next_within(min(idle, left))
        except TimeoutError:
            raise errors.UpstreamTimeout(
                f"upstream '{self.provider.name}' stream stalled for {min(idle, left):g}s",
                provider=self.provider.name,
            ) from None

    def _feed(self, data: bytes) -> None:
        for event in self.decoder.feed(data):
            self._event(event.data, event.event)

    def _event(self, data: bytes, name: str | None) -> None:
        if self.done:
            return
        if data.startswith(b"[DONE]"):
            self.done = True
            return
        try:
            chunk = self.parse(self.call.op, data, name)
        except errors.RouterError:
            raise
        except Exception as exc:
            raise plugin_calls.contained(self.provider, "transform_stream_event", exc) from None
        if chunk is None:
            return
        usage = chunk.get("usage")
        choices = chunk.get("choices")
        if usage:
            if self.rescue is not None:
                usage = chunk["usage"] = self.rescue.usage(usage)
            self.call.usage = usage
        if self.chunk_id is None:
            self.chunk_id = chunk.get("id")
            self.model = chunk.get("model")
        elif self.continues is not None:
            chunk["id"] = self.continues  # one answer, one id
            rescue = self.rescue
            if rescue is not None:
                if rescue.model:
                    chunk["model"] = rescue.model  # one answer, one model name
                verifier = rescue.verifier
                if verifier is not None and choices and not verifier.admit(chunk):
                    self.started = self.started or verifier.at > 0
                    return  # what the client already has
        if usage:
            self.started = True
        if choices:
            for choice in choices:
                if choice.get("finish_reason"):
                    self.finished = self.started = True
                delta = choice.get("delta")
                if isinstance(delta, dict):
                    answer = delta.get("content")
                    text = answer or delta.get("reasoning_content")
                    if self.continues is not None:
                        delta.pop("role", None)  # the client already has the message's role
                    if delta.get("tool_calls") or delta.get("function_call"):
                        self.started = True
                        self.text = None  # only plain text can be continued
                    if choice.get("index"):
                        self.text = None  # ... of a single choice
                else:
                    answer = text = choice.get("text")
                if isinstance(text, str) and text:
                    self.completion_chars += len(text)
                    self.started = True
                if self.text is not None and isinstance(answer, str) and answer:
                    self.text.append(answer)
        if self.frames is not None:
            try:
                out = self.frames.feed(chunk)
            except errors.RouterError:
                raise  # (a translator's own verdict on the chunk)
            except Exception as exc:  # (an upstream's chunk no translation can read)
                raise untranslatable(self.provider.name, exc) from None
            if out:
                self.pending.append(out)
            return
        if self.client_wants_usage:
            if usage:
                self.usage_sent = True
        else:
            if usage and not choices:
                return  # the usage chunk the router asked for on its own behalf
            chunk.pop("usage", None)
        self.pending.append(encode(chunk))

    async def prime(self) -> None:
        """Read until the answer has begun; failures up to here can still be retried.

        A role-only first chunk is held back with the rest: it says nothing yet, and sending
        it would commit the stream to an upstream that may still fail before its first token.
        """
        while not self.started and not self.done:
            data = await self._next_bytes(priming=True)
            if data is None:
                for event in self.decoder.flush():
                    self._event(event.data, event.event)
                if not self.started:
                    raise self._unanswered()
                break
            self._feed(data)

    def _unanswered(self) -> errors.RouterError:
        """The error of a stream that ended before any answer: a body that was no event
        stream at all (an HTML page, say) is a malformed answer, not a lost connection."""
        name = self.provider.name
        kind = self.upstream.headers.get("content-type") or ""
        if kind and "event-stream" not in kind.lower():
            return errors.MalformedResponse(
                f"upstream '{name}' answered a stream request with {kind[:60]!r}, "
                "not an event stream",
                provider=name,
            )
        return errors.UpstreamConnectionError(
            f"upstream '{name}' closed the stream before answering", provider=name
        )

    def spent(self) -> int:
        """Tokens this broken stream used upstream, estimated: its prompt and the completion
        it relayed (a rescue's usage counts the completion again: see `Rescue`)."""
        before = self.rescue.chars if self.rescue is not None else 0
        prompt = estimate_prompt_tokens(self.call.body)
        return prompt + estimate_tokens(self.completion_chars - before)

    def _usage_frame(self) -> bytes:
        usage = self.call.usage
        if usage is None:
            prompt = estimate_prompt_tokens(self.call.body)
            if self.rescue is not None:  # (its partial answer, sent as prompt, is not one)
                prompt = max(0, prompt - self.rescue.shift)
            completion = estimate_tokens(self.completion_chars)
            usage = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
            self.call.usage = usage
        chunk: dict[str, Any] = {
            "id": "usage",
            "object": "chat.completion.chunk"
            if self.call.op is Operation.CHAT
            else "text_completion",
            "created": int(time.time()),
            "model": self.model or self.target.model,
            "choices": [],
            "usage": usage,
        }
        return encode(chunk)

    def closing_frames(self) -> bytes:
        """What ends a whole answer: the usage chunk if the client asked for it and none
        came, then `[DONE]`; or the translator's last frames."""
        if self.frames is not None:
            return self.frames.finish()
        if self.client_wants_usage and not self.usage_sent:
            return self._usage_frame() + DONE_FRAME
        return DONE_FRAME

    def failure_frame(self, error: errors.RouterError) -> sse.ErrorFrame:
        """The event that ends a stream failing with `error` (no `[DONE]` follows it)."""
        if self.frames is None:
            return error_frame(error)
        frame = sse.ErrorFrame(self.frames.fail(error))
        frame.error = error
        return frame

    async def _drain(self) -> None:
        """Read to the upstream's end of body so its connection goes back to the pool."""
        end = time.monotonic() + 0.05  # (no timer at all when the end is already here)
        try:
            while (left := end - time.monotonic()) > 0:
                if await self.upstream.next_within(left) is None:
                    return
        except (TimeoutError, errors.RouterError):
            pass

    async def __aiter__(self) -> AsyncIterator[bytes]:
        failure: errors.RouterError | None = None
        try:
            while True:
                if self.pending:
                    out = b"".join(self.pending) if len(self.pending) > 1 else self.pending[0]
                    self.pending.clear()
                    yield out
                if self.done:
                    break
                data = await self._next_bytes()
                if data is None:
                    for event in self.decoder.flush():
                        self._event(event.data, event.event)
                    if not self.finished:
                        raise errors.UpstreamConnectionError(
                            f"upstream '{self.provider.name}' ended the stream mid-answer",
                            provider=self.provider.name,
                        )
                    self.done = True  # finished, just without [DONE]: finish it for the client
                    continue
                self._feed(data)
            if self.pending:
                yield b"".join(self.pending)
                self.pending.clear()
            yield self.closing_frames()
            await self._drain()
        except errors.RouterError as exc:
            self.target.runtime.redactor.scrub(exc)
            entry = self.attempt or self.call.attempts[-1]
            entry.outcome = f"ok_then_{exc.code or exc.kind.value}"
            entry.wasted = self.spent()
            record(self.target, exc.kind)
            failure = exc
        finally:
            self.close()
        if failure is not None:
            if self.pending:  # good chunks that arrived in the same read as the failure
                yield b"".join(self.pending)
                self.pending.clear()
            if self.recover is None:
                yield self.failure_frame(failure)
            else:
                async for frame in self.recover(self, failure):
                    yield frame
