"""A provider plugin that changes answers and declares nothing about it, for the test that
the router never skips a translation it was not told it may skip."""

from __future__ import annotations

from typing import Any

from router.spec import Operation, Provider, UpstreamResponse, hookimpl


class ShoutProvider(Provider):
    """Plain OpenAI, with every answer's text in capitals."""

    def transform_response(self, op: Operation, response: UpstreamResponse) -> dict[str, Any]:
        data = super().transform_response(op, response)
        for choice in data.get("choices") or ():
            message = choice.get("message") or {}
            if isinstance(message.get("content"), str):
                message["content"] = message["content"].upper()
        return data


@hookimpl
def register_providers(register: Any) -> None:
    register("shout", ShoutProvider)
