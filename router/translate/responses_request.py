"""An OpenAI Responses request (`POST /v1/responses`) as a chat-completions request.

Stateless only. What maps to what:
    instructions                 → a first `system` message
    input (string)               → one `user` message
    input message items          → messages; `developer` becomes `system` (chat targets
                                   outside OpenAI rarely know `developer`); parts:
                                   input_text/output_text → text, input_image (image_url)
                                   → image_url, input_file (file_data/file_id) → file,
                                   input_audio → input_audio, refusal → the `refusal` field
    function_call items          → `tool_calls` on an assistant message (consecutive calls,
                                   and the assistant text just before them, make one message)
    function_call_output items   → `tool` messages; images in an output follow the tool
                                   messages as a `user` message (chat tool messages take text)
    reasoning items              → dropped (chat has no field to replay them in)
    tools (function) / tool_choice (incl. allowed_tools, by narrowing `tools`)
    text.format                  → response_format (json_schema, json_object; text: nothing)
    max_output_tokens            → max_tokens (the field every chat target takes)
    temperature, top_p, user, parallel_tool_calls (with tools) → the same
    reasoning.effort             → reasoning_effort, only where `TargetFeatures` says so
    stream                       → stream, with `stream_options.include_usage`

`metadata` is echoed on the response object, not sent upstream. Dropped as not
applicable to chat targets: `include`, `text.verbosity`, `service_tier`, `prompt_cache_key`,
`safety_identifier`, `top_logprobs`, `max_tool_calls`, `truncation: "disabled"`,
`reasoning.summary`, `stream_options`. Rejected (400 naming the field) by
`check_responses_supported`: stored state (`previous_response_id`, `conversation`,
`store: true`, `prompt`, `item_reference` items), `background: true`, `truncation: "auto"`,
built-in tools (in `tools`, `tool_choice` or as `input` items), `input_image.file_id` and
`input_file.file_url`.
"""

from __future__ import annotations

from typing import Any

from router.translate.common import (
    PLAIN,
    TargetFeatures,
    as_dict,
    as_list,
    as_str,
    copy_numbers,
    invalid,
    required_str,
    stream_fields,
    unsupported,
)
from router.translate.responses_input import (
    BUILT_IN,
    STATELESS,
    TRANSLATED_ITEMS,
    check_part,
    input_messages,
    unsupported_item,
)

_TOOL_CHOICES = ("auto", "none", "required")


def check_responses_supported(body: Any) -> None:
    """Raise InvalidRequest for what only OpenAI's own server can do (see the module doc).

    `responses_to_chat` makes the same checks as it goes; this is for a caller that must
    know before choosing between a native Responses target and translation."""
    body = as_dict(body, "body")
    _check_fields(body)
    tools = body.get("tools")
    if isinstance(tools, list):
        for j, tool in enumerate(tools):
            if isinstance(tool, dict) and tool.get("type") != "function":
                raise _built_in_tool(tool, f"tools[{j}].type")
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        _tool_choice_name(choice)
    items = body.get("input")
    if isinstance(items, list):
        for i, item in enumerate(items):
            if isinstance(item, dict):
                kind = item.get("type")
                if kind not in TRANSLATED_ITEMS:
                    raise unsupported_item(kind, f"input[{i}]")
                parts = item.get("output" if kind == "function_call_output" else "content")
                if isinstance(parts, list):
                    field = "output" if kind == "function_call_output" else "content"
                    for j, part in enumerate(parts):
                        if isinstance(part, dict):
                            check_part(part, f"input[{i}].{field}[{j}]")


def responses_to_chat(body: Any, features: TargetFeatures = PLAIN) -> dict[str, Any]:
    """The chat-completions body for a Responses request; InvalidRequest names a bad field."""
    body = as_dict(body, "body")
    _check_fields(body)
    chat: dict[str, Any] = {"model": required_str(body, "model"), "messages": input_messages(body)}
    tools = body.get("tools")
    if tools:
        chat["tools"] = [_tool(t, f"tools[{j}]") for j, t in enumerate(as_list(tools, "tools"))]
    choice = body.get("tool_choice")
    if choice is not None and "tools" in chat:
        _tool_choice(choice, chat)
    if "tools" in chat and body.get("parallel_tool_calls") is not None:
        chat["parallel_tool_calls"] = bool(body["parallel_tool_calls"])
    text = body.get("text")
    if text is not None:
        fmt = as_dict(text, "text").get("format")
        if fmt is not None:
            _text_format(as_dict(fmt, "text.format"), chat)
    limit = body.get("max_output_tokens")
    if limit is not None:
        if type(limit) is not int or limit < 1:
            raise invalid("'max_output_tokens' must be a positive integer", "max_output_tokens")
        chat["max_tokens"] = limit
    copy_numbers(body, chat, "temperature", "top_p")
    reasoning = body.get("reasoning")
    if reasoning is not None and features.reasoning_effort:
        effort = as_dict(reasoning, "reasoning").get("effort")
        if effort is not None:
            chat["reasoning_effort"] = as_str(effort, "reasoning.effort")
    user = body.get("user")
    if user is not None:
        chat["user"] = as_str(user, "user")
    stream_fields(chat, body.get("stream"))
    return chat


def _check_fields(body: dict[str, Any]) -> None:
    for name in ("previous_response_id", "conversation", "prompt"):
        if body.get(name) is not None:
            raise unsupported(name, STATELESS)
    if body.get("store") is True:
        raise unsupported("store", "responses are not stored; set 'store' to false")
    if body.get("background") is True:
        raise unsupported("background", "responses run in the foreground only")
    if body.get("truncation") not in (None, "disabled"):
        raise unsupported("truncation", "only 'disabled' is available")


def _built_in_tool(tool: dict[str, Any], param: str) -> Exception:
    return unsupported(param, f"tool type '{tool.get('type')}' is built in; {BUILT_IN}")


def _tool(tool: Any, param: str) -> dict[str, Any]:
    tool = as_dict(tool, param)
    if tool.get("type") != "function":
        raise _built_in_tool(tool, f"{param}.type")
    function: dict[str, Any] = {"name": required_str(tool, "name", f"{param}.")}
    for name in ("description", "parameters", "strict"):
        if tool.get(name) is not None:
            function[name] = tool[name]
    return {"type": "function", "function": function}


def _tool_choice_name(choice: dict[str, Any]) -> str | None:
    """The function a dict `tool_choice` names (None for allowed_tools); raises otherwise."""
    kind = choice.get("type")
    if kind == "function":
        return required_str(choice, "name", "tool_choice.")
    if kind == "allowed_tools":
        for j, tool in enumerate(as_list(choice.get("tools"), "tool_choice.tools")):
            if as_dict(tool, f"tool_choice.tools[{j}]").get("type") != "function":
                raise _built_in_tool(tool, f"tool_choice.tools[{j}].type")
        return None
    raise unsupported("tool_choice", f"'{kind}' names a built-in tool; {BUILT_IN}")


def _tool_choice(choice: Any, chat: dict[str, Any]) -> None:
    if isinstance(choice, str):
        if choice not in _TOOL_CHOICES:
            raise invalid("'tool_choice' must be one of auto, none, required", "tool_choice")
        chat["tool_choice"] = choice
        return
    choice = as_dict(choice, "tool_choice")
    name = _tool_choice_name(choice)
    if name is not None:
        chat["tool_choice"] = {"type": "function", "function": {"name": name}}
        return
    # allowed_tools: chat targets know no such choice; offering only those tools is the same.
    allowed = {tool.get("name") for tool in choice["tools"]}
    chat["tools"] = [t for t in chat["tools"] if t["function"]["name"] in allowed]
    mode = choice.get("mode", "auto")
    if mode not in ("auto", "required"):
        raise invalid("'tool_choice.mode' must be auto or required", "tool_choice.mode")
    if not chat["tools"]:
        del chat["tools"]
    else:
        chat["tool_choice"] = mode


def _text_format(fmt: dict[str, Any], chat: dict[str, Any]) -> None:
    kind = fmt.get("type")
    if kind == "text":
        return
    if kind == "json_object":
        chat["response_format"] = {"type": "json_object"}
        return
    if kind != "json_schema":
        raise invalid("'text.format.type' must be text, json_object or json_schema", "text.format")
    schema: dict[str, Any] = {
        "name": required_str(fmt, "name", "text.format."),
        "schema": as_dict(fmt.get("schema"), "text.format.schema"),
    }
    for name in ("description", "strict"):
        if fmt.get(name) is not None:
            schema[name] = fmt[name]
    chat["response_format"] = {"type": "json_schema", "json_schema": schema}
