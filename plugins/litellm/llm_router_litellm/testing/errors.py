"""LiteLLM's error replies, byte for byte: the `ProxyException` envelope, FastAPI's own
404/405 bodies, and the headers that come with them. Inferred cases say so.
"""

from __future__ import annotations

from typing import Any

from llm_router_litellm.testing.replies import MODEL, json_reply
from router.testing import Reply


def error(
    status: int,
    message: str,
    type_: str | None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Reply:
    """LiteLLM's `ProxyException` envelope: `code` is the status as a string."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": str(status)}}
    body["error"].update(extra)
    return json_reply(body, status, headers)


def no_api_key() -> Reply:
    return error(401, "Authentication Error, No api key passed in.", "auth_error", "None")


def invalid_virtual_key(shown: str = "sk-...abcd", key_hash: str = "9f86d081" * 8) -> Reply:
    return error(
        401,
        f"Authentication Error, Invalid proxy server token passed. Received API Key = {shown}, "
        f"Key Hash (Token) ={key_hash}. Unable to find token in cache or "
        "`LiteLLM_VerificationTokenTable`",
        "auth_error",
        "None",
    )


def key_not_sk(shown: str = "abcd****wxyz") -> Reply:
    """A key without the `sk-` prefix (the wrapped text is inferred from LiteLLM's source)."""
    return error(
        401,
        f"Authentication Error, LiteLLM Virtual Key expected. Received={shown}, "
        "expected to start with 'sk-'.",
        "auth_error",
        "None",
    )


def no_db() -> Reply:
    return error(400, "No connected db.", "no_db_connection")


def invalid_model(model: str = "nope/not-a-model", route: str = "/chat/completions") -> Reply:
    text = (
        f"{route}: Invalid model name passed in model={model}. "
        "Call `/v1/models` to view available models for your key."
    )
    return error(400, text, "invalid_request_error", provider_specific_fields={"error": text})


def missing_parameter(param: str = "messages", route: str = "/chat/completions") -> Reply:
    return error(
        400,
        f"{route}: Missing required parameter: '{param}'.",
        "invalid_request_error",
        param,
    )


def missing_messages() -> Reply:
    return missing_parameter()


def malformed_json() -> Reply:
    return error(
        400,
        "Invalid JSON payload: unexpected end of data: line 1 column 11 (char 10)",
        "invalid_request_error",
        "request_body",
    )


def _group_tail(group: str) -> str:
    return (
        f"\n\nLiteLLM: model group '{group}' failed with the error above. "
        "No fallback was attempted."
    )


def context_window(
    model: str = MODEL,
    upstream: str = "OpenAIException - This model's maximum context length is 128000 tokens.",
) -> Reply:
    return error(
        400,
        f"litellm.ContextWindowExceededError: litellm.BadRequestError: {upstream}\nmodel={model}. "
        "context_window_fallbacks=None. fallbacks=None.\n\nSet 'context_window_fallback' - "
        f"https://docs.litellm.ai/docs/routing#fallbacks{_group_tail(model)}",
        "invalid_request_error",
    )


def content_policy(model: str = MODEL) -> Reply:
    """A content-filter refusal as the proxy sends it: the router-level BadRequestError wraps
    the ContentPolicyViolationError, whose class adds its prefix twice."""
    return error(
        400,
        "litellm.BadRequestError: litellm.ContentPolicyViolationError: "
        "litellm.ContentPolicyViolationError: AzureException - The response was filtered due "
        "to the prompt triggering Azure OpenAI's content management policy. Please modify your "
        f"prompt and retry.\nmodel={model}. content_policy_fallbacks=None. "
        f"fallbacks=None.{_group_tail(model)}",
        "invalid_request_error",
    )


def upstream_auth(group: str = "up-401") -> Reply:
    return error(
        401,
        "litellm.AuthenticationError: AuthenticationError: OpenAIException - Incorrect API key "
        f"provided: sk-fake.{_group_tail(group)}",
        "authentication_error",
        headers={"llm_provider-x-request-id": "req_fake401"},
    )


def upstream_rate_limited(group: str = "up-429", retry_after: int = 7) -> Reply:
    """Plain `Retry-After` is not re-exposed: only `llm_provider-retry-after`."""
    return error(
        429,
        "litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached for "
        f"gpt-4o-mini{_group_tail(group)}",
        "throttling_error",
        headers={
            "x-ratelimit-remaining-requests": "0",
            "llm_provider-retry-after": str(retry_after),
            "llm_provider-x-ratelimit-remaining-requests": "0",
        },
    )


def upstream_unreachable(group: str = "broken-model") -> Reply:
    return error(
        500,
        "litellm.InternalServerError: InternalServerError: OpenAIException - Connection error."
        + _group_tail(group),
        "internal_server_error",
        headers={"x-litellm-timeout": "600.0"},
    )


def key_rate_limited(limit: int = 10, window: int = 60) -> Reply:
    """The proxy's own per-key limiter (v3): a real `retry-after` (exact body inferred)."""
    return error(
        429,
        f"Rate limit exceeded for api_key: {'2c26b46b' * 8}. Limit type: requests. Current "
        f"limit: {limit}, Remaining: 0. Limit resets at: 2026-11-21 10:01:00 UTC",
        "throttling_error",
        headers={
            "retry-after": str(window),
            "rate_limit_type": "requests",
            "reset_at": "2026-11-21 10:01:00 UTC",
            "x-ratelimit-api_key-limit-requests": str(limit),
            "x-ratelimit-api_key-remaining-requests": "0",
        },
    )


def no_healthy_deployment(model: str = MODEL) -> Reply:
    """Cooldown: LiteLLM forces code 429 on any "No healthy deployment" message."""
    return error(429, f"No healthy deployment available, passed model={model}", None)


def budget_exceeded() -> Reply:
    """A key or team over its budget (inferred from LiteLLM's source)."""
    return error(
        400, "Budget has been exceeded! Current cost: 10.5, Max budget: 10.0", "budget_exceeded"
    )


def service_unavailable(group: str = MODEL) -> Reply:
    """503 (status from the KoboiLLM docs; body inferred)."""
    return error(
        503,
        "litellm.ServiceUnavailableError: ServiceUnavailableError: OpenAIException - "
        f"Service Unavailable{_group_tail(group)}",
        None,
    )


def timeout(group: str = MODEL) -> Reply:
    """408 (status from the KoboiLLM docs; body inferred)."""
    return error(
        408,
        f"litellm.Timeout: APITimeoutError - Request timed out.{_group_tail(group)}",
        None,
    )


def api_error() -> Reply:
    """A generic `APIError`: `type` is JSON null."""
    return error(500, "litellm.APIError: APIError: OpenAIException - Internal Server Error", None)


def not_found() -> Reply:
    return json_reply({"detail": "Not Found"}, 404)


def method_not_allowed() -> Reply:
    return json_reply({"detail": "Method Not Allowed"}, 405, {"allow": "POST"})


ERRORS = {
    "no_api_key": no_api_key,
    "invalid_virtual_key": invalid_virtual_key,
    "key_not_sk": key_not_sk,
    "no_db": no_db,
    "invalid_model": invalid_model,
    "missing_messages": missing_messages,
    "malformed_json": malformed_json,
    "context_window": context_window,
    "content_policy": content_policy,
    "upstream_auth": upstream_auth,
    "upstream_rate_limited": upstream_rate_limited,
    "upstream_unreachable": upstream_unreachable,
    "key_rate_limited": key_rate_limited,
    "no_healthy_deployment": no_healthy_deployment,
    "budget_exceeded": budget_exceeded,
    "service_unavailable": service_unavailable,
    "timeout": timeout,
    "api_error": api_error,
    "not_found": not_found,
    "method_not_allowed": method_not_allowed,
}
"""Every error reply above, by name, for parametrised tests."""
