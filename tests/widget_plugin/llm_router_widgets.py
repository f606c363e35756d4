"""A plugin that adds an operation of its own, for tests of the operation registry.

It registers `POST /v1/widgets` (a JSON body naming a widget, routed by `model` like any
operation, each widget counting 10 tokens against token budgets) and `plugin: widgets`, a
provider serving it at the upstream's `/make-widget`, in the upstream's own shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from router.spec import (
    InvalidRequest,
    Operation,
    Provider,
    UpstreamResponse,
    hookimpl,
)


def _check(body: dict[str, Any]) -> None:
    if not isinstance(body.get("name"), str):
        raise InvalidRequest("'name' must be a string", param="name")


WIDGETS = Operation(
    "widgets",
    "/widgets",
    required="name",
    cost=lambda body: 10 * int(body.get("count") or 1),
    check=_check,
)


class WidgetProvider(Provider):
    """The widget factory: `{"widget_name", "model"}` in, `{"made": {...}}` out."""

    operations = frozenset({WIDGETS})
    paths = {WIDGETS: "/make-widget"}
    models_path = None

    def transform_request(self, op: Operation, body: dict[str, Any], model: str) -> dict[str, Any]:
        return {"model": model, "widget_name": body["name"]}

    def transform_response(self, op: Operation, response: UpstreamResponse) -> dict[str, Any]:
        made = response.json()["made"]
        return {"object": "widget", "name": made["widget_name"], "by": made["model"]}


@hookimpl
def register_operations(register: Callable[[Operation], Operation]) -> None:
    register(WIDGETS)


@hookimpl
def register_providers(register: Callable[[str, type[Provider]], None]) -> None:
    register("widgets", WidgetProvider)
