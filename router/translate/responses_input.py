"""Responses `instructions` and `input` items as chat messages (see `responses_request`)."""

from __future__ import annotations

from typing import Any

from router.translate.common import (
    as_dict,
    as_list,
    as_str,
    invalid,
    one_text,
    required_str,
    unsupported,
)

STATELESS = "this router keeps no response state; send the whole conversation in 'input'"
BUILT_IN = "only function tools can be routed to chat-completions targets"
_ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}
_DETAILS = ("auto", "low", "high")
# (tuples, not sets: what a client sends may be unhashable, and these are compared with ==)
TRANSLATED_ITEMS = (None, "message", "function_call", "function_call_output", "reasoning")


def unsupported_item(kind: Any, param: str) -> Exception:
    if kind == "item_reference":
        return unsupported(param, STATELESS)
    return unsupported(f"{param}.type", f"'{kind}' items belong to built-in tools; {BUILT_IN}")


def input_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        messages.append({"role": "system", "content": as_str(instructions, "instructions")})
    items = body.get("input")
    if items is None:
        raise invalid("missing required parameter: 'input'", "input")
    if isinstance(items, str):
        messages.append({"role": "user", "content": items})
        return messages
    images: list[dict[str, Any]] = []  # from tool outputs, sent once the tool messages end
    for i, item in enumerate(as_list(items, "input")):
        param = f"input[{i}]"
        item = as_dict(item, param)
        kind = item.get("type")
        if kind != "function_call_output" and images:
            messages.append({"role": "user", "content": images})
            images = []
        if kind is None or kind == "message":
            messages.append(_message(item, param))
        elif kind == "function_call":
            _function_call(item, param, messages)
        elif kind == "function_call_output":
            messages.append(_function_output(item, param, images))
        elif kind != "reasoning":
            raise unsupported_item(kind, param)
    if images:
        messages.append({"role": "user", "content": images})
    return messages


def _message(item: dict[str, Any], param: str) -> dict[str, Any]:
    role = item.get("role")
    role = _ROLES.get(role) if isinstance(role, str) else None
    if role is None:
        raise invalid(f"'{param}.role' must be one of user, assistant, system, developer", param)
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    parts = as_list(content, f"{param}.content")
    if role == "assistant":
        return _assistant(parts, param)
    return {
        "role": role,
        "content": one_text([_part(p, f"{param}.content[{j}]") for j, p in enumerate(parts)]),
    }


def _assistant(parts: list[Any], param: str) -> dict[str, Any]:
    texts: list[str] = []
    refusals: list[str] = []
    for j, part in enumerate(parts):
        part = as_dict(part, f"{param}.content[{j}]")
        kind = part.get("type")
        if kind in ("output_text", "input_text", "text"):
            texts.append(as_str(part.get("text"), f"{param}.content[{j}].text"))
        elif kind == "refusal":
            refusals.append(as_str(part.get("refusal"), f"{param}.content[{j}].refusal"))
        else:
            raise invalid(f"an assistant message cannot hold '{kind}' parts", f"{param}.content")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if refusals:
        message["refusal"] = "".join(refusals)
    return message


def check_part(part: dict[str, Any], param: str) -> None:
    kind = part.get("type")
    if kind == "input_image" and part.get("file_id") is not None:
        raise unsupported(f"{param}.file_id", "images are sent by 'image_url' only")
    if kind == "input_file" and part.get("file_url") is not None:
        raise unsupported(f"{param}.file_url", "files are sent by 'file_data' or 'file_id'")


def _part(part: Any, param: str) -> dict[str, Any]:
    part = as_dict(part, param)
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": as_str(part.get("text"), f"{param}.text")}
    check_part(part, param)
    if kind == "input_image":
        url = part.get("image_url")
        if url is None:
            raise invalid(f"missing required parameter: '{param}.image_url'", f"{param}.image_url")
        image: dict[str, Any] = {"url": as_str(url, f"{param}.image_url")}
        if part.get("detail") in _DETAILS:
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        fields = ("file_data", "file_id", "filename")
        file = {name: part[name] for name in fields if part.get(name) is not None}
        if "file_data" not in file and "file_id" not in file:
            raise invalid(f"'{param}' needs 'file_data' or 'file_id'", param)
        return {"type": "file", "file": file}
    if kind == "input_audio":
        return {"type": "input_audio", "input_audio": as_dict(part.get("input_audio"), param)}
    raise invalid(f"unknown content part type '{kind}'", f"{param}.type")


def _function_call(item: dict[str, Any], param: str, messages: list[dict[str, Any]]) -> None:
    arguments = item.get("arguments")
    call = {
        "id": required_str(item, "call_id", f"{param}."),
        "type": "function",
        "function": {
            "name": required_str(item, "name", f"{param}."),
            "arguments": "" if arguments is None else as_str(arguments, f"{param}.arguments"),
        },
    }
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _function_output(
    item: dict[str, Any], param: str, images: list[dict[str, Any]]
) -> dict[str, Any]:
    call_id = required_str(item, "call_id", f"{param}.")
    output = item.get("output")
    if output is None or isinstance(output, str):
        return {"role": "tool", "tool_call_id": call_id, "content": output or ""}
    texts: list[dict[str, Any]] = []
    for j, part in enumerate(as_list(output, f"{param}.output")):
        translated = _part(part, f"{param}.output[{j}]")
        (texts if translated["type"] == "text" else images).append(translated)
    return {"role": "tool", "tool_call_id": call_id, "content": one_text(texts) if texts else ""}
