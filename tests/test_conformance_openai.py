"""The built-in `openai` provider passes the conformance suite that plugins run."""

import openai

from router.testing import chat_chunks, chat_completion, json_reply, sse_reply
from router.testing.conformance import ErrorCase, ProviderConformance


def envelope(message, type_, code, status, headers=None):
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return json_reply(body, status=status, headers=headers)


class TestOpenAIConformance(ProviderConformance):
    plugin = "openai"

    def chat_reply(self, content):
        return json_reply(chat_completion(content))

    def stream_reply(self, pieces):
        return sse_reply(chat_chunks(pieces))

    def midstream_error_reply(self, pieces):
        frames = chat_chunks(pieces, usage=None, done=False)[:-1]
        return sse_reply([*frames, {"error": {"message": "overloaded", "type": "server_error"}}])

    def error_cases(self):
        return [
            ErrorCase(
                "rate limited",
                envelope("slow down", "requests", "rate_limit_exceeded", 429, {"retry-after": "1"}),
                openai.RateLimitError,
                429,
            ),
            ErrorCase(
                "quota",
                envelope(
                    "You exceeded your current quota",
                    "insufficient_quota",
                    "insufficient_quota",
                    429,
                ),
                openai.RateLimitError,
                429,
                "insufficient_quota",
            ),
            ErrorCase(
                "bad key",
                envelope("Incorrect API key", "invalid_request_error", "invalid_api_key", 401),
                openai.AuthenticationError,
                401,
            ),
            ErrorCase(
                "context",
                envelope(
                    "This model's maximum context length is 8192 tokens",
                    "invalid_request_error",
                    "context_length_exceeded",
                    400,
                ),
                openai.BadRequestError,
                400,
                "context_length_exceeded",
            ),
            ErrorCase(
                "policy",
                envelope(
                    "flagged by the content_filter", "invalid_request_error", "content_filter", 400
                ),
                openai.BadRequestError,
                400,
                "content_policy_violation",
            ),
            ErrorCase(
                "invalid",
                envelope("bad temperature", "invalid_request_error", None, 400),
                openai.BadRequestError,
                400,
            ),
            ErrorCase(
                "no model",
                envelope(
                    "The model does not exist", "invalid_request_error", "model_not_found", 404
                ),
                openai.NotFoundError,
                404,
            ),
            ErrorCase(
                "server",
                envelope("boom", "server_error", None, 500),
                openai.InternalServerError,
                502,
            ),
            ErrorCase(
                "overloaded",
                envelope("overloaded", "server_error", None, 503),
                openai.InternalServerError,
                503,
            ),
        ]
