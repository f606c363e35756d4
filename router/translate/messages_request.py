"""An Anthropic Messages request (`POST /v1/messages`) as a chat-completions request.

    system (string or text blocks)   → a first `system` message
    user text / image blocks         → text / image_url parts (base64 sources become
                                       `data:` URLs; url sources pass as they are)
    user document blocks             → a `file` part with a `data:` URL (base64: a PDF),
                                       or text (and image) parts (text and content
                                       sources); in a tool result, its text goes in the
                                       tool message and a file follows as images do
    user tool_result blocks          → `tool` messages, ahead of the rest of that user
                                       turn; string or block content; `is_error: true`
                                       prefixes the content with "Error: " (chat has no
                                       such flag); images in a result follow the tool
                                       messages in a `user` message (chat tool messages
                                       take text only)
    assistant text / tool_use        → content / `tool_calls` (`input` as JSON arguments)
    assistant thinking blocks        → dropped (chat has no field to replay them in)
    tools (input_schema)             → function tools (`parameters`); `strict` passes
    tool_choice auto/any/tool/none   → auto / required / the named function / none;
                                       `disable_parallel_tool_use` → parallel_tool_calls
    max_tokens (required)            → max_tokens
    stop_sequences                   → stop
    temperature, top_p               → the same
    top_k                            → `top_k`, only where `TargetFeatures.top_k`
    metadata.user_id                 → user
    output_config.format (json_schema) → response_format json_schema
    output_config.effort, thinking   → reasoning_effort, only where
                                       `TargetFeatures.reasoning_effort`: effort as given
                                       (xhigh and max as high); a thinking budget of ≤1024
                                       tokens is low, ≤2048 medium, more high (LiteLLM's
                                       mapping, reversed); adaptive thinking sends none
    stream                           → stream, with `stream_options.include_usage`

`cache_control` marks are dropped (chat targets cache on their own). Rejected with a 400
naming the field: server tools (`web_search_…`, `bash_…`, … any tool `type` other than
`custom`), `search_result` and other block types chat cannot carry, image `file` sources,
document `url` and `file` sources. `count_tokens` uses `chat_messages` alone.
"""

from __future__ import annotations

from typing import Any

import orjson

from router.translate.common import (
    PLAIN,
    TargetFeatures,
    as_dict,
    as_list,
    as_str,
    copy_numbers,
    invalid,
    one_text,
    required_str,
    stream_fields,
    unsupported,
)

_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
_DROPPED_BLOCKS = ("thinking", "redacted_thinking")  # (a tuple: blocks' types may be unhashable)
_THINKING = ("enabled", "disabled", "adaptive", "between_tools")


def messages_to_chat(body: Any, features: TargetFeatures = PLAIN) -> dict[str, Any]:
    """The chat-completions body for a Messages request; InvalidRequest names a bad field."""
    body = as_dict(body, "body")
    model = required_str(body, "model")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise invalid("max_tokens: Field required", "max_tokens")
    if type(max_tokens) is not int or max_tokens < 1:
        raise invalid("'max_tokens' must be a positive integer", "max_tokens")
    chat: dict[str, Any] = {"model": model, "messages": chat_messages(body)}
    chat["max_tokens"] = max_tokens
    stops = body.get("stop_sequences")
    if stops:
        chat["stop"] = [as_str(s, "stop_sequences") for s in as_list(stops, "stop_sequences")]
    copy_numbers(body, chat, "temperature", "top_p")
    if features.top_k:
        copy_numbers(body, chat, "top_k")
    metadata = body.get("metadata")
    if metadata is not None:
        user = as_dict(metadata, "metadata").get("user_id")
        if user is not None:
            chat["user"] = as_str(user, "metadata.user_id")
    tools = body.get("tools")
    if tools:
        chat["tools"] = [_tool(t, f"tools[{j}]") for j, t in enumerate(as_list(tools, "tools"))]
        choice = body.get("tool_choice")
        if choice is not None:
            _tool_choice(as_dict(choice, "tool_choice"), chat)
    config = body.get("output_config")
    config = as_dict(config, "output_config") if config is not None else {}
    if config.get("format") is not None:
        chat["response_format"] = _output_format(as_dict(config["format"], "output_config.format"))
    effort = _effort(config.get("effort"), body.get("thinking"))
    if effort is not None and features.reasoning_effort:
        chat["reasoning_effort"] = effort
    stream_fields(chat, body.get("stream"))
    return chat


def show_thinking(request: dict[str, Any]) -> bool:
    """Whether answers carry `thinking` blocks: as with Anthropic, only when asked for."""
    thinking = request.get("thinking")
    return (
        isinstance(thinking, dict)
        and thinking.get("type") in ("enabled", "adaptive", "between_tools")
        and thinking.get("display") != "omitted"
    )


def chat_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """`system` and `messages` as chat messages (also what `count_tokens` counts)."""
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        if isinstance(system, str):
            messages.append({"role": "system", "content": system})
        else:
            parts = [
                _text_block(b, f"system[{j}]") for j, b in enumerate(as_list(system, "system"))
            ]
            messages.append({"role": "system", "content": one_text(parts)})
    turns = body.get("messages")
    if turns is None:
        raise invalid("messages: Field required", "messages")
    turns = as_list(turns, "messages")
    if not turns:  # (as Anthropic: a system prompt alone is no conversation)
        raise invalid("messages: at least one message is required", "messages")
    for i, turn in enumerate(turns):
        param = f"messages[{i}]"
        turn = as_dict(turn, param)
        role = turn.get("role")
        content = turn.get("content")
        if role not in ("user", "assistant"):
            raise invalid(f"'{param}.role' must be user or assistant", f"{param}.role")
        if isinstance(content, str):
            messages.append({"role": role, "content": content})
            continue
        blocks = as_list(content, f"{param}.content")
        if role == "user":
            _user_turn(blocks, f"{param}.content", messages)
        else:
            messages.append(_assistant_turn(blocks, f"{param}.content"))
    return messages


def _text_block(block: Any, param: str) -> dict[str, Any]:
    block = as_dict(block, param)
    if block.get("type") != "text":
        raise invalid(f"'{param}' must be a text block", f"{param}.type")
    return {"type": "text", "text": as_str(block.get("text"), f"{param}.text")}


def _user_turn(blocks: list[Any], param: str, messages: list[dict[str, Any]]) -> None:
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        where = f"{param}[{j}]"
        kind = as_dict(block, where).get("type")
        if kind == "text":
            parts.append(_text_block(block, where))
        elif kind == "image":
            parts.append(_image(block, where))
        elif kind == "document":
            parts += _document(block, where)
        elif kind == "tool_result":
            messages.append(_tool_result(block, where, parts))
        else:
            raise _unsupported_block(kind, where)
    if parts:
        messages.append({"role": "user", "content": one_text(parts)})


def _assistant_turn(blocks: list[Any], param: str) -> dict[str, Any]:
    texts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        where = f"{param}[{j}]"
        kind = as_dict(block, where).get("type")
        if kind == "text":
            texts.append(_text_block(block, where))
        elif kind == "tool_use":
            arguments = block.get("input")
            calls.append(
                {
                    "id": required_str(block, "id", f"{where}."),
                    "type": "function",
                    "function": {
                        "name": required_str(block, "name", f"{where}."),
                        "arguments": orjson.dumps(
                            {} if arguments is None else as_dict(arguments, f"{where}.input")
                        ).decode(),
                    },
                }
            )
        elif kind not in _DROPPED_BLOCKS:
            raise _unsupported_block(kind, where)
    message: dict[str, Any] = {"role": "assistant", "content": one_text(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _image(block: dict[str, Any], param: str) -> dict[str, Any]:
    source = as_dict(block.get("source"), f"{param}.source")
    kind = source.get("type")
    if kind == "base64":
        media = required_str(source, "media_type", f"{param}.source.")
        data = required_str(source, "data", f"{param}.source.")
        url = f"data:{media};base64,{data}"
    elif kind == "url":
        url = required_str(source, "url", f"{param}.source.")
    else:
        raise unsupported(f"{param}.source.type", f"images are sent as base64 or url, not {kind}")
    return {"type": "image_url", "image_url": {"url": url}}


_EXTENSIONS = {"application/pdf": "pdf", "text/plain": "txt"}


def _document(block: dict[str, Any], param: str) -> list[dict[str, Any]]:
    """A document block as chat parts: a base64 file (a PDF) as a `file` part with its data
    URL, plain text or content blocks as text (and image) parts. Its `title`, `context` and
    `citations` are dropped: chat has nowhere to put them."""
    source = as_dict(block.get("source"), f"{param}.source")
    kind = source.get("type")
    where = f"{param}.source."
    if kind == "base64":
        media = required_str(source, "media_type", where)
        data = required_str(source, "data", where)
        name = f"document.{_EXTENSIONS.get(media, 'bin')}"
        file = {"filename": name, "file_data": f"data:{media};base64,{data}"}
        return [{"type": "file", "file": file}]
    if kind == "text":
        return [{"type": "text", "text": required_str(source, "data", where)}]
    if kind == "content":
        content = source.get("content")
        if isinstance(content, str):
            return [{"type": "text", "text": content}]
        parts = []
        for j, item in enumerate(as_list(content, f"{param}.source.content")):
            at = f"{param}.source.content[{j}]"
            inner = as_dict(item, at).get("type")
            if inner not in ("text", "image"):
                raise _unsupported_block(inner, at)
            parts.append(_text_block(item, at) if inner == "text" else _image(item, at))
        return parts
    raise unsupported(
        f"{param}.source.type", f"documents are sent as base64, text or content, not {kind}"
    )


def _tool_result(
    block: dict[str, Any], param: str, user_parts: list[dict[str, Any]]
) -> dict[str, Any]:
    call_id = required_str(block, "tool_use_id", f"{param}.")
    content = block.get("content")
    texts: list[dict[str, Any]] = []
    if isinstance(content, str):
        texts.append({"type": "text", "text": content})
    elif content is not None:
        for j, item in enumerate(as_list(content, f"{param}.content")):
            where = f"{param}.content[{j}]"
            kind = as_dict(item, where).get("type")
            if kind == "text":
                texts.append(_text_block(item, where))
            elif kind == "image":
                user_parts.append(_image(item, where))
            elif kind == "document":  # its text in the tool message, a file after it
                for part in _document(item, where):
                    (texts if part["type"] == "text" else user_parts).append(part)
            else:
                raise _unsupported_block(kind, where)
    if block.get("is_error") is True:
        texts.insert(0, {"type": "text", "text": "Error: "})
        texts = [{"type": "text", "text": "".join(t["text"] for t in texts)}]
    return {"role": "tool", "tool_call_id": call_id, "content": one_text(texts) if texts else ""}


def _unsupported_block(kind: Any, param: str) -> Exception:
    return unsupported(
        f"{param}.type", f"'{kind}' blocks cannot be sent to chat-completions targets"
    )


def _tool(tool: Any, param: str) -> dict[str, Any]:
    tool = as_dict(tool, param)
    kind = tool.get("type")
    if kind not in (None, "custom"):
        raise unsupported(f"{param}.type", f"'{kind}' is a server tool; only custom tools route")
    function: dict[str, Any] = {
        "name": required_str(tool, "name", f"{param}."),
        "parameters": as_dict(tool.get("input_schema"), f"{param}.input_schema"),
    }
    if tool.get("description") is not None:
        function["description"] = as_str(tool["description"], f"{param}.description")
    if isinstance(tool.get("strict"), bool):
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _tool_choice(choice: dict[str, Any], chat: dict[str, Any]) -> None:
    kind = choice.get("type")
    if kind == "auto":
        chat["tool_choice"] = "auto"
    elif kind == "any":
        chat["tool_choice"] = "required"
    elif kind == "tool":
        name = required_str(choice, "name", "tool_choice.")
        chat["tool_choice"] = {"type": "function", "function": {"name": name}}
    elif kind == "none":
        chat["tool_choice"] = "none"
    else:
        raise invalid("'tool_choice.type' must be auto, any, tool or none", "tool_choice.type")
    if choice.get("disable_parallel_tool_use") is True and kind != "none":
        chat["parallel_tool_calls"] = False


def _output_format(fmt: dict[str, Any]) -> dict[str, Any]:
    if fmt.get("type") != "json_schema":
        raise invalid("'output_config.format.type' must be json_schema", "output_config.format")
    schema = as_dict(fmt.get("schema"), "output_config.format.schema")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


def _effort(effort: Any, thinking: Any) -> str | None:
    """The reasoning effort asked for, if any; checks both fields whatever the target."""
    budget = None
    if thinking is not None:
        kind = as_dict(thinking, "thinking").get("type")
        if kind not in _THINKING:
            raise invalid(f"'thinking.type' must be one of {', '.join(_THINKING)}", "thinking.type")
        if kind == "enabled":
            budget = thinking.get("budget_tokens")
            if type(budget) is not int or budget < 1:
                raise invalid(
                    "'thinking.budget_tokens' must be a positive integer", "thinking.budget_tokens"
                )
    if effort is not None:
        if not isinstance(effort, str) or effort not in _EFFORTS:
            raise invalid(
                "'output_config.effort' must be low, medium, high, xhigh or max",
                "output_config.effort",
            )
        return _EFFORTS[effort]
    if budget is None:
        return None
    return "low" if budget <= 1024 else "medium" if budget <= 2048 else "high"
