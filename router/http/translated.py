"""The endpoints of the APIs served by translation to chat completions: OpenAI's Responses
API and Anthropic's Messages API (`router.operations`, `router.translate.apis`).

A request takes the same steps as any other (`router.http.endpoints.Exchange`): its key
(Anthropic clients send it in `x-api-key`), its body, its route, its admission by the rate
limits, which count its chat translation, and the attempts along the route with their
retries, fallbacks and breakers. Each attempt goes one of two ways, by its target's
provider. One that serves the API natively (`providers.<name>.native`) gets the client's
body as it came (but for its `model`), and the client gets its answer, or its stream's
events, as they came (`router.upstream.native`). Any other gets the chat translation, and
its answer, or each chunk of its stream, is translated back; a stream recovered mid-way
from another target is translated the same way. Errors take the API's shape.

A request that cannot be translated (stored state, built-in tools) goes to native targets
only; when its model's routes have none, it is refused with a 400 that names the field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from router import errors
from router.http.drain import Drain
from router.http.endpoints import Endpoint, Exchange, find_route
from router.http.state import RouterState
from router.operations import native_only
from router.routing.dispatch import fallback_chain
from router.translate.apis import Api
from router.types import Call, ClientKey, Operation, Route, RoutingGraph, Target
from router.upstream.native import NativeRelay
from router.upstream.relay import JsonAnswerBody, StreamRelay, open_stream, send_json
from router.upstream.sse import unencodable
from router.upstream.streaming import untranslatable
from router.upstream.usage import estimate_prompt_tokens


class Attempts:
    """One request's attempts, each made the way its target takes the API (module doc).

    An attempt is made with a copy of the call that says what goes upstream (the operation
    and its body); what the attempt finds out (its usage, for a stream the target that
    answers) is the request's (see `Exchange.stream`)."""

    __slots__ = ("_prompt_tokens", "api", "body", "call", "op")

    def __init__(self, call: Call, op: Operation, body: dict[str, Any]) -> None:
        self.call = call  # its body is the chat translation (the client's own when there is none)
        self.op = op
        self.api: Api = op.adapter
        self.body = body  # the client's
        self._prompt_tokens: int | None = None

    def prompt_tokens(self) -> int:
        """The router's estimate of the prompt, reported when an upstream reports no usage."""
        if self._prompt_tokens is None:
            self._prompt_tokens = estimate_prompt_tokens(self.call.body)
        return self._prompt_tokens

    def _native(self, target: Target) -> Call | None:
        """The call as a native attempt at `target` makes it, if its provider serves the API."""
        if self.op in target.provider.operations:
            return dataclasses.replace(self.call, op=self.op, body=self.body)
        return None

    async def send(self, target: Target, remaining: float) -> JsonAnswerBody:
        call, api = self.call, self.api
        native = self._native(target)
        if native is not None:
            answer = await send_json(native, target, remaining)
            call.usage = api.usage(answer.data.get("usage"))
            return answer
        attempt = dataclasses.replace(call, op=Operation.CHAT)
        answer = await send_json(attempt, target, remaining)
        call.usage = attempt.usage
        data = answer.data
        prompt = 0 if data.get("usage") else self.prompt_tokens()
        try:
            return JsonAnswerBody(data, api.answer(data, self.body, prompt))
        except orjson.JSONEncodeError as exc:
            raise unencodable(exc, target.runtime.name) from None
        except errors.RouterError:
            raise
        except Exception as exc:  # (an upstream's answer no translation can read)
            raise untranslatable(target.runtime.name, exc, "an answer") from None

    async def open(
        self, target: Target, remaining: float, on_open: Callable[[StreamRelay], None]
    ) -> StreamRelay:
        native = self._native(target)
        if native is not None:
            return await open_stream(
                native, target, remaining, on_open=on_open, relay_type=NativeRelay
            )
        attempt = dataclasses.replace(self.call, op=Operation.CHAT)
        frames = self.api.stream(self.body, target.model, self.prompt_tokens())
        return await open_stream(attempt, target, remaining, on_open=on_open, frames=frames)


def _has_native(graph: RoutingGraph, route: Route, key: ClientKey, natively: Operation) -> bool:
    return any(each.serving.get(natively) for each in fallback_chain(graph, route, key))


def translated_endpoint(op: Operation, state: RouterState, drain: Drain) -> Endpoint:
    """The handler of the POST path of `op`, an operation served by translation."""
    api: Api = op.adapter
    natively = native_only(op)

    async def serve(exchange: Exchange) -> Response:
        key, body, model, stream = await exchange.read(op)
        route = find_route(exchange.graph, key, model, op)
        if api.local:
            return exchange.local(api.local_answer(body))
        routed = op
        try:
            chat = api.chat(body)
        except errors.InvalidRequest:
            if natively is None or not _has_native(exchange.graph, route, key, natively):
                raise
            routed, chat = natively, body
        call = await exchange.start(routed, chat, stream, key, route)
        attempts = Attempts(call, op, body)
        if stream:
            return await exchange.stream(call, attempts.open)
        return await exchange.answer(call, attempts.send)

    async def endpoint(request: Request) -> Response:
        return await Exchange(state, drain, request, op, api.error).respond(serve)

    endpoint.__name__ = f"{op.name}_endpoint"
    return endpoint
