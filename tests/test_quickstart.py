"""The README's promise: `llm-router serve` with the quickstart answers the openai SDK."""

from pathlib import Path

import openai

from router.testing import RouterProcess

QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "configs" / "quickstart.yaml"


def test_quickstart_serves_streamed_and_plain_answers():
    with RouterProcess(QUICKSTART) as router:
        client = openai.OpenAI(base_url=router.base_url, api_key="sk-router-demo", max_retries=0)
        stream = client.chat.completions.create(
            model="demo", messages=[{"role": "user", "content": "Hello!"}], stream=True
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        plain = client.chat.completions.create(
            model="demo", messages=[{"role": "user", "content": "Hello!"}]
        )
        assert streamed and streamed == plain.choices[0].message.content
        assert [m.id for m in client.models.list()] == ["demo"]
