"""The tokligence plugin against the conformance suite every provider plugin runs."""

import openai
from llm_router_tokligence import testing as tok

from router.testing.conformance import ErrorCase, ProviderConformance


class TestTokligenceConformance(ProviderConformance):
    plugin = "tokligence"
    chat_path = tok.CHAT_PATH
    api_key = "tok_conformanceKey0123456789"
    upstream_model = "gpt-4o-mini"

    def assert_credentials(self, received):
        assert received.headers["authorization"] == f"Bearer {self.api_key}"

    def chat_reply(self, content):
        return tok.chat_reply(content, self.upstream_model)

    def stream_reply(self, pieces):
        return tok.chat_stream(pieces, self.upstream_model)

    def midstream_error_reply(self, pieces):
        return tok.stream_error(pieces, self.upstream_model)

    def error_cases(self):
        return [
            ErrorCase("missing key", tok.missing_api_key(), openai.AuthenticationError, 401),
            ErrorCase("invalid key", tok.invalid_api_key(), openai.AuthenticationError, 401),
            ErrorCase("bad json", tok.bad_json(), openai.BadRequestError, 400),
            ErrorCase(
                "firewall",
                tok.firewall_block(),
                openai.BadRequestError,
                400,
                "content_policy_violation",
            ),
            ErrorCase(
                "balance",
                tok.insufficient_balance(),
                openai.RateLimitError,
                429,
                "insufficient_quota",
            ),
            ErrorCase(
                "rate limited",
                tok.rate_limited(),
                openai.RateLimitError,
                429,
                "rate_limit_exceeded",
            ),
            ErrorCase("no adapter", tok.no_adapter(), openai.NotFoundError, 404, "model_not_found"),
            ErrorCase(
                "wrapped 500", tok.upstream_http_error(500, "boom"), openai.InternalServerError, 502
            ),
        ]
