"""The telkom plugin against the conformance suite every provider plugin runs."""

import openai
from llm_router_telkom import testing as telkom

from router.testing.conformance import ErrorCase, ProviderConformance


class TestTelkomConformance(ProviderConformance):
    plugin = "telkom"
    base_path = telkom.BASE_PATH
    chat_path = telkom.CHAT_PATH
    api_key = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
    upstream_model = "telkom-ai-instruct"

    def assert_credentials(self, received):
        assert received.headers["x-api-key"] == self.api_key
        assert "authorization" not in received.headers

    def chat_reply(self, content):
        return telkom.completion(content, self.upstream_model)

    def stream_reply(self, pieces):
        return telkom.stream(pieces, self.upstream_model)

    def midstream_error_reply(self, pieces):
        return telkom.mid_stream_error(pieces, model=self.upstream_model)

    def error_cases(self):
        return [
            ErrorCase("no key", telkom.no_api_key(), openai.AuthenticationError, 401),
            ErrorCase("bad key", telkom.invalid_credentials(), openai.AuthenticationError, 401),
            ErrorCase(
                "kong 2 bad key",
                telkom.invalid_credentials(kong=2),
                openai.AuthenticationError,
                401,
            ),
            ErrorCase(
                "rate limited",
                telkom.rate_limited(retry_after=1),
                openai.RateLimitError,
                429,
                "rate_limit_exceeded",
            ),
            ErrorCase(
                "content filter",
                telkom.content_refused(),
                openai.BadRequestError,
                400,
                "content_policy_violation",
            ),
            ErrorCase(
                "wrong path",
                telkom.no_route(),
                openai.NotFoundError,
                404,
                "upstream_route_not_found",
            ),
            ErrorCase("kong failure", telkom.unexpected_error(), openai.InternalServerError, 502),
            ErrorCase(
                "context",
                telkom.backend_error(
                    400,
                    "This model's maximum context length is 8192 tokens",
                    type="BadRequestError",
                ),
                openai.BadRequestError,
                400,
                "context_length_exceeded",
            ),
            ErrorCase(
                "unavailable",
                telkom.backend_detail(503, "Service Unavailable"),
                openai.InternalServerError,
                503,
                "upstream_unavailable",
            ),
        ]
