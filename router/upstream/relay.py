"""One attempt at one target: send, translate, and for streams relay event by event.

A stream is primed before the client sees a byte: the upstream must answer 2xx and produce a
first chunk within the first-token timeout, so that any failure up to there can still be
retried elsewhere. After that, a failure ends the stream with an OpenAI-style error event;
a truncated answer is never presented as a success. A primed stream counts as in flight at
its target (`least_busy` reads it) until the relay is closed, however the answer ends.

This is where upstream words enter the router's errors, so every error leaving an attempt is
scrubbed here of configured secrets (`router.observability.redaction`), before anything
logs, traces or shows it.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from router import errors
from router.observability import tracing
from router.routing.strategies import record_latency
from router.translate.tokens import usage_of_response
from router.types import Call, ProviderRuntime, Target
from router.upstream import plugin_calls
from router.upstream.events import parse_stream_event
from router.upstream.gathered import gather, is_event_stream
from router.upstream.normalize import complete_answer, missing_part
from router.upstream.provider import PlainRequest, Provider, UpstreamResponse
from router.upstream.sse import BOM, SSEDecoder, unencodable
from router.upstream.streaming import Frames, Recover, Rescue, StreamRelay, error_frame
from router.upstream.transport import HeadTimer, HttpTransport, Transport, UpstreamStream
from router.upstream.whole import answer_as_stream, is_json

__all__ = [
    "Frames",
    "JsonAnswerBody",
    "Recover",
    "Rescue",
    "StreamRelay",
    "error_frame",
    "open_stream",
    "send_json",
]


def _request(
    runtime: ProviderRuntime, call: Call, body: dict[str, Any], model: str, stream: bool
) -> httpx.Request | PlainRequest:
    """The upstream request; a `PlainRequest` when the core's own HTTP transport sends it."""
    provider = runtime.provider
    try:
        if type(runtime.transport) is HttpTransport:
            return provider.plain_request(call.op, body, model, stream=stream)
        return provider.build_request(call.op, body, model, stream=stream)
    except errors.RouterError:
        raise
    except Exception as exc:  # a bug in the plugin: see `router.upstream.plugin_calls`
        raise plugin_calls.contained(provider, "transform_request", exc) from None


def _transport(runtime: ProviderRuntime) -> Transport:
    """The runtime's transport, which the running router attached when it started."""
    transport = runtime.transport
    if transport is None:
        raise errors.ServiceUnavailable(f"provider '{runtime.name}' is not started yet")
    return transport


def _note_limits(target: Target, provider: Provider, headers: Any) -> None:
    """Back off before the upstream has to say no: honour an exhausted budget's reset.
    (`parse_rate_limit_headers` passes over an answer without rate-limit headers cheaply.)
    The hint is advisory: a plugin's bug reading it is logged and counted, and the answer
    that carried the headers stands (see `router.upstream.plugin_calls`)."""
    try:
        info = provider.get_rate_limit_info(headers)
    except errors.RouterError:
        raise
    except Exception as exc:
        plugin_calls.contained(provider, "get_rate_limit_info", exc)
        return
    if info is not None and info.exhausted:
        wait = info.wait_hint()
        if wait:
            target.cool_until = time.monotonic() + wait


@dataclass(slots=True)
class JsonAnswerBody:
    """A non-streaming attempt's answer: as parsed, and the body the client gets.

    When the provider declares `answers_pass_through` (its upstream answers in plain OpenAI)
    and the answer lacked nothing the OpenAI schema requires (see `router.upstream.normalize`),
    the body is the upstream's own bytes: parsed to check it and read its usage, not
    re-encoded."""

    data: dict[str, Any]
    content: bytes


def _answer(
    call: Call, provider: Provider, response: UpstreamResponse, events: bool = False
) -> dict[str, Any]:
    """The OpenAI-shaped answer of a 2xx response (the provider's reading of its JSON, or with
    `events` its event stream gathered), or the error it is: an error body or event, a
    malformed body, or an answer without its list of parts."""
    if events:
        data = _gathered(call, provider, response.content)
    else:
        try:
            data = provider.transform_response(call.op, response)
        except errors.RouterError:
            raise
        except Exception as exc:
            raise plugin_calls.contained(provider, "transform_response", exc) from None
    if (missing := missing_part(call.op, data)) is not None:
        raise errors.MalformedResponse(
            f"upstream '{provider.name}' sent an answer without a list of `{missing}`",
            provider=provider.name,
        )
    return data


def _gathered(call: Call, provider: Provider, content: bytes) -> dict[str, Any]:
    """An event stream sent to a request that asked for none (`router.upstream.gathered`):
    each event read as the provider reads a stream's (an error event is its error), gathered
    into the one answer."""
    chunks = []
    decoder = SSEDecoder(provider=provider.name)
    for event in [*decoder.feed(content), *decoder.flush()]:
        if event.data.startswith(b"[DONE]"):
            break
        try:
            chunk = provider.transform_stream_event(call.op, event.data, event.event)
        except errors.RouterError:
            raise
        except Exception as exc:
            raise plugin_calls.contained(provider, "transform_stream_event", exc) from None
        if chunk is not None:
            chunks.append(chunk)
    if not chunks:
        raise errors.MalformedResponse(
            f"upstream '{provider.name}' sent an event stream with no answer in it",
            provider=provider.name,
        )
    return gather(call.op, chunks)


async def send_json(call: Call, target: Target, remaining: float) -> JsonAnswerBody:
    """A non-streaming attempt: the OpenAI-shaped answer, or an UpstreamError."""
    runtime = target.runtime
    provider = runtime.provider
    request = _request(runtime, call, dict(call.body), target.model, False)
    tracing.inject(request.headers)
    if call.prepare is not None:
        call.prepare(request, target)
    timeouts = target.timeouts
    timeout = min(timeouts.total, remaining)
    started = time.monotonic()
    try:
        response = await _transport(runtime).send(
            request, timeout, timeouts.connect, min(timeouts.first_token, timeout)
        )
        if not 200 <= response.status < 300:
            raise plugin_calls.upstream_error(provider, response)
        record_latency(target, time.monotonic() - started)
        _note_limits(target, provider, response.headers)
        events = call.op.streams and is_event_stream(response.headers.get("content-type"))
        data = _answer(call, provider, response, events)
    except errors.RouterError as exc:
        runtime.redactor.scrub(exc)  # upstream words, before anyone logs or shows them
        raise
    completed = complete_answer(call.op, data, target.model)
    usage = data.get("usage")
    if isinstance(usage, dict):
        # (counted the Responses way, as `/responses/compact` answers: its chat usage; the
        # APIs served by translation read their native answers' usage themselves)
        call.usage = usage if "input_tokens" not in usage else usage_of_response(usage)
    if not completed and provider.answers_pass_through and not events:
        return JsonAnswerBody(data, response.content)
    try:
        return JsonAnswerBody(data, orjson.dumps(data))
    except TypeError as exc:
        raise unencodable(exc, provider.name) from None


async def _streamed_whole(
    call: Call, target: Target, upstream: UpstreamStream
) -> UpstreamStream | None:
    """A JSON answer to a streaming request (`router.upstream.whole`), read whole and checked
    as a JSON answer is (an error in it is the upstream's error), as a stream of its chunks;
    None, with `upstream` untouched, when its first bytes are events after all (a stream that
    a server labels JSON): then it is relayed as the stream it is."""
    first = await upstream.peek()
    if first.removeprefix(BOM).lstrip()[:1] not in (b"{", b"["):
        return None
    provider = target.runtime.provider
    content = await upstream.read(target.runtime.max_answer_bytes, provider.name)
    upstream.close()
    data = _answer(call, provider, UpstreamResponse(upstream.status, upstream.headers, content))
    complete_answer(call.op, data, target.model)
    try:
        frames = answer_as_stream(call.op, data)
    except TypeError as exc:
        raise unencodable(exc, provider.name) from None
    return UpstreamStream(upstream.status, upstream.headers, _once(frames))


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def open_stream(
    call: Call,
    target: Target,
    remaining: float,
    continues: str | None = None,
    on_open: Callable[[StreamRelay], None] | None = None,
    frames: Frames | None = None,
    relay_type: type[StreamRelay] | None = None,
    rescue: Rescue | None = None,
) -> StreamRelay:
    """A streaming attempt, primed: its first chunk is ready when this returns.

    `continues`: the chunk id of an answer this stream continues (see `router.routing.recovery`).
    `on_open`: called once the upstream answered 2xx, before its first token: the time to
    prepare whatever the answer needs that does not depend on the token.
    `frames`: what makes the client's frames of another API from the chunks (`Frames`);
    `relay_type`: a `StreamRelay` subclass that relays another API's own stream;
    `rescue`: what this stream keeps of the broken one it finishes (`Rescue`).
    """
    runtime = target.runtime
    provider = runtime.provider
    body = dict(call.body)
    if provider.stream_usage and call.op.streams and call.op.upstream is None:
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    request = _request(runtime, call, body, target.model, True)
    tracing.inject(request.headers)
    if call.prepare is not None:
        call.prepare(request, target)
    started = time.monotonic()
    timeouts = target.timeouts
    budget = min(timeouts.total, remaining)
    first_token = min(timeouts.first_token, budget)
    upstream: UpstreamStream | None = None
    head = HeadTimer(first_token)  # cheaper than asyncio.timeout, see transport.HeadTimer
    try:
        try:
            upstream = await _transport(runtime).open(request, timeouts.connect)
            if not 200 <= upstream.status < 300:
                content = await upstream.read(runtime.max_answer_bytes, runtime.name)
                raise plugin_calls.upstream_error(
                    provider, UpstreamResponse(upstream.status, upstream.headers, content)
                )
            # Read while the upstream works on its first token, not after it arrived.
            _note_limits(target, provider, upstream.headers)
            whole = None
            if call.op.streams and is_json(upstream.headers.get("content-type")):
                whole = await _streamed_whole(call, target, upstream)  # answered at once?
                upstream = whole or upstream
            relay = (relay_type or StreamRelay)(
                call, target, upstream, started + budget, continues, frames, rescue
            )
            if whole is not None:
                relay.parse = functools.partial(parse_stream_event, provider)
            if on_open is not None:
                on_open(relay)
            await relay.prime()
        finally:
            head.handle.cancel()
    except asyncio.CancelledError:
        if upstream is not None:
            upstream.close()
        if head.timed_out():
            raise errors.UpstreamTimeout(
                f"upstream '{provider.name}' sent no answer within {first_token:g}s",
                provider=provider.name,
            ) from None
        raise
    except BaseException as exc:
        if upstream is not None:
            upstream.close()
        if isinstance(exc, errors.RouterError):
            runtime.redactor.scrub(exc)
        raise
    record_latency(target, time.monotonic() - started)
    relay.hold()
    return relay
