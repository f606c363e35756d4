"""Streams of a target that serves the client's API natively (`providers.<name>.native`):
relayed event by event as the upstream sent them, untranslated.

`NativeRelay` is a `StreamRelay` that reads just enough of the API's own events (their names,
and the payloads of the few that carry usage or report a failure) to keep the relay's
promises: the events before the answer begins are held back, so that a failure up to there
is still retried or falls back elsewhere; an upstream `error` event is the router's error
like a chat stream's; a stream that ends before the API's last event is a failure, never a
truncated success; and a failure after the first byte ends the stream with the API's own
error event. The API's knowledge of its events is its `router.translate.apis.Api`.
"""

from __future__ import annotations

from typing import Any

import orjson

from router import errors
from router.upstream import sse
from router.upstream.relay import StreamRelay


class NativeRelay(StreamRelay):
    """Relays a native stream of `call.op`'s API (see the module doc)."""

    counts: dict[str, Any] | None = None  # the API's usage counts so far
    events = 0  # events relayed, for the failure event's sequence number

    def _event(self, data: bytes, name: str | None) -> None:
        if self.done:
            return
        api = self.call.op.adapter
        if name is None:
            if data.startswith(b"[DONE]"):  # (not these APIs' own; some servers add it)
                self.done = True
                return
            name = ""
        if name in api.failure:
            payload = self._payload(data)
            inner = payload.get("response")  # `response.failed`: the error is the response's
            failed = inner if isinstance(inner, dict) and inner.get("error") else payload
            raise self.provider.get_stream_error(failed)
        if name in api.usage_events:
            counts = api.event_counts(name, self._payload(data))
            if isinstance(counts, dict):
                merged = {**(self.counts or {}), **counts}
                self.counts = {k: v for k, v in merged.items() if v is not None}
                self.call.usage = api.usage(self.counts)
        if name not in api.preamble:
            self.started = True
        if name in api.terminal:
            self.finished = self.done = True
        self.events += 1
        event = b"event: " + name.encode() + b"\n" if name else b""
        self.pending.append(event + b"data: " + data + b"\n\n")

    def _payload(self, data: bytes) -> dict[str, Any]:
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            raise errors.MalformedResponse(
                f"upstream '{self.provider.name}' sent a stream event that is not a JSON object",
                provider=self.provider.name,
            )
        return payload

    def closing_frames(self) -> bytes:
        return b""  # the upstream's last event ended the answer

    def failure_frame(self, error: errors.RouterError) -> sse.ErrorFrame:
        frame = sse.ErrorFrame(self.call.op.adapter.native_failure(error, self.events))
        frame.error = error
        return frame
