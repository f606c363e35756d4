"""The telnyx plugin against the conformance suite every provider plugin runs."""

import openai
from llm_router_telnyx import testing as fake

from router.testing.conformance import ErrorCase, ProviderConformance


class TestTelnyxConformance(ProviderConformance):
    plugin = "telnyx"
    base_path = fake.API_ROOT
    chat_path = fake.CHAT_PATH
    api_key = "KEY0193conformance"
    upstream_model = "moonshotai/Kimi-K2.6"

    def assert_credentials(self, received):
        assert received.headers["authorization"] == f"Bearer {self.api_key}"

    def chat_reply(self, content):
        return fake.completion_reply(content, model=self.upstream_model)

    def stream_reply(self, pieces):
        return fake.stream_reply(pieces, model=self.upstream_model)

    def midstream_error_reply(self, pieces):
        return fake.stream_error_reply(pieces)

    def error_cases(self):
        return [
            ErrorCase("422 v2", fake.validation_error(), openai.BadRequestError, 400),
            ErrorCase("422 v1", fake.validation_error(style="v1"), openai.BadRequestError, 400),
            ErrorCase(
                "10009",
                fake.auth_failed(),
                openai.AuthenticationError,
                401,
                "upstream_authentication_failed",
            ),
            ErrorCase("10007 401", fake.unauthorized(), openai.AuthenticationError, 401),
            ErrorCase(
                "10011", fake.rate_limited(), openai.RateLimitError, 429, "rate_limit_exceeded"
            ),
            ErrorCase(
                "10007 500",
                fake.unexpected_error(),
                openai.InternalServerError,
                502,
                "upstream_server_error",
            ),
            ErrorCase(
                "503",
                fake.service_unavailable(),
                openai.InternalServerError,
                503,
                "upstream_unavailable",
            ),
            ErrorCase("404", fake.detail_error(404, "Not Found"), openai.NotFoundError, 404),
            ErrorCase("400", fake.detail_error(400, "bad"), openai.BadRequestError, 400),
        ]
