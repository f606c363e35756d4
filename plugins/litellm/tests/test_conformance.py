"""The litellm plugin against the conformance suite every provider plugin runs."""

import openai
from llm_router_litellm import testing as fake

from router.testing.conformance import ErrorCase, ProviderConformance


class TestLiteLLMConformance(ProviderConformance):
    plugin = "litellm"
    base_path = "/v1"
    chat_path = "/v1/chat/completions"
    api_key = "sk-litellm-conformance-0123"
    upstream_model = "openai/gpt-4o-mini"

    def assert_credentials(self, received):
        assert received.headers["authorization"] == f"Bearer {self.api_key}"

    def chat_reply(self, content):
        return fake.chat_response(content, model=self.upstream_model)

    def stream_reply(self, pieces):
        return fake.chat_stream(pieces, model=self.upstream_model)

    def midstream_error_reply(self, pieces):
        return fake.chat_stream_failing(pieces, model=self.upstream_model)

    def error_cases(self):
        auth = "upstream_authentication_failed"
        return [
            ErrorCase("no key", fake.no_api_key(), openai.AuthenticationError, 401, auth),
            ErrorCase("no db", fake.no_db(), openai.AuthenticationError, 401, auth),
            ErrorCase("bad model", fake.invalid_model(), openai.NotFoundError, 404),
            ErrorCase("context", fake.context_window(), openai.BadRequestError, 400),
            ErrorCase(
                "throttled",
                fake.upstream_rate_limited(),
                openai.RateLimitError,
                429,
                "rate_limit_exceeded",
            ),
            ErrorCase(
                "unreachable",
                fake.upstream_unreachable(),
                openai.InternalServerError,
                502,
                "upstream_server_error",
            ),
            ErrorCase("detail 404", fake.not_found(), openai.NotFoundError, 404),
        ]
