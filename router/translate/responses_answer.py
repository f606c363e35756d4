"""A chat completion as an OpenAI Responses `response` object.

    choices[0].message.reasoning_content (or `reasoning`)
                             → a `reasoning` item: `content: [reasoning_text]`, `summary: []`
                               (the shape OpenAI gives for open-weight reasoning models)
    message.content          → a `message` item with one `output_text` part
    message.refusal          → a `refusal` part in that message
    message.tool_calls       → `function_call` items (`call_id` is the chat tool call's id)
    finish_reason            → status: `stop`/`tool_calls` completed; `length` incomplete
                               (`max_output_tokens`); `content_filter` incomplete
                               (`content_filter`)
    usage                    → input/output/total tokens, cached and reasoning details;
                               estimated as the router does when the answer has none

The request's settings are echoed (`instructions`, `tools`, `tool_choice`, `text`,
`temperature`, `metadata`, …) as the API does; `store` is always false and
`previous_response_id` null. Only choice 0 is read: the Responses API has no `n`.
"""

from __future__ import annotations

import time
from typing import Any

from router.errors import ErrorKind, RouterError
from router.translate.common import new_id
from router.translate.responses_items import call_item, content_part, message_item, reasoning_item
from router.translate.tokens import ChatUsage
from router.upstream.normalize import answer_text

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
_RATE_KINDS = frozenset((ErrorKind.RATE_LIMITED, ErrorKind.INSUFFICIENT_QUOTA))
_PROMPT_KINDS = frozenset(
    (ErrorKind.INVALID_REQUEST, ErrorKind.CONTEXT_LENGTH, ErrorKind.CONTENT_POLICY)
)


def echo_fields(request: dict[str, Any]) -> dict[str, Any]:
    """The request settings every `response` object repeats; compute once per request."""
    text = request.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    reasoning = request.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    parallel = request.get("parallel_tool_calls")
    echo = {
        "background": False,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "metadata": request.get("metadata") or {},
        "parallel_tool_calls": True if parallel is None else bool(parallel),
        "previous_response_id": None,
        "reasoning": {"effort": effort, "summary": None},
        "store": False,
        "temperature": request.get("temperature"),
        "text": {"format": fmt or {"type": "text"}},
        "tool_choice": request.get("tool_choice") or "auto",
        "tools": [_echo_tool(t) for t in request.get("tools") or () if isinstance(t, dict)],
        "top_p": request.get("top_p"),
        "truncation": "disabled",
    }
    if request.get("user") is not None:  # (a string or absent, says the schema)
        echo["user"] = request["user"]
    return echo


def _echo_tool(tool: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "name": tool.get("name"),
        "description": tool.get("description"),
        "parameters": tool.get("parameters"),
        "strict": tool.get("strict"),
    }


def response_object(
    echo: dict[str, Any],
    *,
    response_id: str,
    created_at: int,
    model: str,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None = None,
    incomplete_reason: str | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A `response` object; `echo` comes from `echo_fields`."""
    response = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "model": model,
        "output": output,
    }
    if usage is not None:  # (an object or absent, says the schema)
        response["usage"] = usage
    response.update(echo)
    return response


def responses_usage(usage: ChatUsage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt,
        "input_tokens_details": {
            "cached_tokens": usage.cached,
            "cache_write_tokens": usage.cache_write,
        },
        "output_tokens": usage.completion,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning},
        "total_tokens": usage.total,
    }


def status_of(finish_reason: Any) -> tuple[str, str | None]:
    """(status, incomplete_details.reason) for a chat `finish_reason`."""
    reason = _INCOMPLETE.get(finish_reason) if isinstance(finish_reason, str) else None
    return ("incomplete", reason) if reason else ("completed", None)


def response_error(error: RouterError) -> dict[str, Any]:
    """A failed response's `error`: its `code` must be one the schema lists."""
    if error.kind in _RATE_KINDS:
        code = "rate_limit_exceeded"
    elif error.kind in _PROMPT_KINDS:
        code = "invalid_prompt"
    else:
        code = "server_error"
    return {"code": code, "message": error.message}


def chat_to_response(
    answer: dict[str, Any],
    request: dict[str, Any],
    echo: dict[str, Any] | None = None,
    *,
    prompt_tokens: int = 0,
) -> dict[str, Any]:
    """The `response` object for a non-streamed chat completion `answer` to `request`.

    `echo`: `echo_fields(request)` if already made; `prompt_tokens`: the estimate reported
    if the answer has no usage."""
    choices = answer.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    status, incomplete = status_of(choice.get("finish_reason"))
    item_status = "incomplete" if incomplete else "completed"
    output: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        thought = [content_part("reasoning_text", reasoning)]
        output.append(reasoning_item(new_id("rs_"), "completed", thought))
    content = answer_text(message.get("content"))
    refusal = message.get("refusal")
    calls = message.get("tool_calls") or ()
    parts: list[dict[str, Any]] = []
    if isinstance(content, str) and (content or not (calls or refusal)):
        parts.append(content_part("output_text", content))
    if isinstance(refusal, str) and refusal:
        parts.append(content_part("refusal", refusal))
    if parts:
        output.append(message_item(new_id("msg_"), item_status, parts))
    for call in calls:
        function = call.get("function") or {}
        output.append(
            call_item(
                new_id("fc_"),
                "completed",
                call.get("id") or new_id("call_"),
                function.get("name") or "",
                function.get("arguments") or "",
            )
        )
    chars = sum(len(part.get("text") or part.get("refusal") or "") for part in parts)
    chars += sum(len(item["arguments"]) for item in output if item["type"] == "function_call")
    usage = ChatUsage.read(answer.get("usage")) or ChatUsage.estimate(prompt_tokens, chars)
    return response_object(
        echo if echo is not None else echo_fields(request),
        response_id=new_id("resp_"),
        created_at=answer.get("created") or int(time.time()),
        model=answer.get("model") or request.get("model") or "",
        status=status,
        output=output,
        usage=responses_usage(usage),
        incomplete_reason=incomplete,
    )
