"""The router at the bottom of the app's middleware stack, with the API's POST endpoints
found by one dictionary look-up instead of a walk over every route's pattern.

`ApiRouter` is a Starlette `Router`: whatever middleware the app has (the server-error and
exception middleware, the drain, any middleware a user adds) runs for the API's endpoints as
for every other route, exception handlers apply, and a `root_path` deployment routes by the
path below it. Only the look-up is faster: the API's POST paths are fixed, so a request for
one is dispatched to its handler without matching the route list; anything else (GET
endpoints, admin, metrics, 404 and 405 answers, lifespan) is Starlette's own routing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Router
from starlette.types import Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]


def route_path(scope: Scope) -> str:
    """The request's path below the app's `root_path`, as Starlette's routing matches it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if not root or not path.startswith(root):
        return path
    rest = path[len(root) :]
    return rest if not rest or rest[0] == "/" else path


class ApiRouter(Router):
    """A Starlette router that dispatches the API's POST paths (`posts`) by dictionary."""

    def __init__(
        self, routes: Sequence[BaseRoute], posts: Mapping[str, Endpoint], **kwargs: Any
    ) -> None:
        super().__init__(routes=routes, **kwargs)
        self.posts = dict(posts)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = route_path(scope) if scope.get("root_path") else scope["path"]
            endpoint = self.posts.get(path)
            if endpoint is not None:
                if "router" not in scope:
                    scope["router"] = self
                response = await endpoint(Request(scope, receive, send))
                await response(scope, receive, send)
                return
        await super().app(scope, receive, send)
