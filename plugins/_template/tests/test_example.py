"""The Example plugin against the conformance suite every provider plugin runs."""

import openai

from router.testing import chat_chunks, chat_completion, json_reply, sse_reply
from router.testing.conformance import ErrorCase, ProviderConformance


class TestExampleConformance(ProviderConformance):
    plugin = "example"
    settings = {"region": "us"}

    def assert_credentials(self, received):
        assert received.headers["x-example-key"] == self.api_key
        assert received.headers["x-example-region"] == "us"

    def chat_reply(self, content):
        return json_reply(chat_completion(content))

    def stream_reply(self, pieces):
        return sse_reply(chat_chunks(pieces))

    def error_cases(self):
        return [
            ErrorCase("rate limited", json_reply({"message": "slow down"}, status=429,
                                                 headers={"retry-after": "2"}),
                      openai.RateLimitError, 429),
            ErrorCase("rate limited, retry_in", json_reply({"message": "slow", "retry_in": 1},
                                                           status=429),
                      openai.RateLimitError, 429),
            ErrorCase("bad key", json_reply({"message": "who are you"}, status=401),
                      openai.AuthenticationError, 401),
            ErrorCase("server", json_reply({"message": "boom"}, status=500),
                      openai.InternalServerError, 502),
        ]


def test_only_the_key_is_a_credential():
    """`auth_headers()` holds the credential alone (masked, and locked against header rules);
    the region is an ordinary header, which rules may rewrite and `explain` shows."""
    from llm_router_example import ExampleProvider, ExampleSettings
    from router.spec import ProviderConfig

    provider = ExampleProvider(
        ProviderConfig(
            name="p",
            base_url="http://127.0.0.1:9/v1",
            api_key="k-1",
            settings=ExampleSettings(region="us"),
        )
    )
    assert provider.auth_headers() == {"x-example-key": "k-1"}
    assert provider.headers["x-example-region"] == "us"
