"""The mock's structured answers: a JSON value the request's schema accepts, whatever the
schema's shape (references, unions, constants, bounds, recursion)."""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson
import pytest

from router.providers.mock_media import structured, tool_call

TREE: dict[str, Any] = {
    "$defs": {
        "Node": {
            "type": "object",
            "properties": {
                "label": {"type": "string", "minLength": 80},
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
            },
            "required": ["label", "children"],
        }
    },
    "$ref": "#/$defs/Node",
}
SCHEMAS: list[dict[str, Any]] = [
    TREE,
    {
        "type": "object",
        "properties": {
            "version": {"const": 2},
            "mood": {"enum": ["calm", "busy"]},
            "maybe": {"type": ["null", "integer"], "exclusiveMinimum": 5},
            "least": {"type": "integer", "minimum": 1.5},
            "either": {"oneOf": [{"type": "null"}, {"type": "number", "minimum": 1.5}]},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 3},
            "id": {"type": "string", "format": "uuid"},
            "ok": {"type": "boolean"},
            "short": {"type": "string", "maxLength": 3},
        },
        "required": ["version", "mood", "maybe", "least", "either", "tags", "id", "ok", "short"],
        "additionalProperties": False,
    },
    {"type": "array", "items": {"type": "integer", "minimum": -4}},
    {"type": "string"},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_a_structured_answer_is_valid_for_its_schema(schema: dict[str, Any]) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}}
    answer = structured(fmt, "the mock answers")
    assert answer is not None
    jsonschema.validate(orjson.loads(answer), schema)


def test_plain_text_and_json_objects() -> None:
    assert structured(None, "hi") is None
    assert structured({"type": "text"}, "hi") is None
    assert structured({"type": "json_object"}, "hi") == '{"text":"hi"}'
    assert structured({"type": "json_schema"}, "hi") == '"hi"'  # no schema: any value


WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
OFFERED = [
    {"type": "custom", "custom": {"name": "grammar"}},
    {"type": "function", "function": {"name": "weather", "parameters": WEATHER}},
    {"type": "function", "function": {"name": "clock"}},
]


def _allowed(mode: str, *names: str) -> dict[str, Any]:
    listed = [{"type": "function", "function": {"name": name}} for name in names]
    return {"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": listed}}


@pytest.mark.parametrize(
    ("choice", "called"),
    [
        ("required", "weather"),  # the first function offered
        ({"type": "function", "function": {"name": "clock"}}, "clock"),
        (_allowed("required", "nowhere", "clock"), "clock"),  # the first allowed one offered
        (_allowed("auto", "clock"), None),
        ("auto", None),
        ("none", None),
        (None, None),
        ({"type": "function", "function": {"name": "nowhere"}}, None),
    ],
)
def test_a_tool_is_called_only_when_the_request_forces_it(choice: Any, called: str | None) -> None:
    body: dict[str, Any] = {"tools": OFFERED}
    if choice is not None:
        body["tool_choice"] = choice
    call = tool_call(body, "in Paris")
    assert (call["function"]["name"] if call else None) == called
    if call is not None:
        arguments = orjson.loads(call["function"]["arguments"])
        assert arguments == ({"city": "in Paris"} if called == "weather" else {})
        assert call["type"] == "function" and call["id"].startswith("call_")


def test_no_call_without_function_tools() -> None:
    assert tool_call({"tool_choice": "required"}, "hi") is None
    assert tool_call({"tools": OFFERED[:1], "tool_choice": "required"}, "hi") is None
    assert tool_call({"tools": "weather", "tool_choice": "required"}, "hi") is None
