"""An upstream that reports absurd usage (counts near 2**64, which JSON parsers still read
as integers) through `llm-switchyard serve`: every API answers, in its own shape, without an
internal error. What the router adds up or translates from such counts can pass 64 bits,
which no JSON encoder writes: the chat answer goes out without the `total_tokens` the router
would have added, and an answer that cannot be written at all fails its attempt as a
malformed upstream answer (502), as any other unusable answer does."""

from __future__ import annotations

from pathlib import Path

import httpx

from router.testing import (
    FakeUpstream,
    RouterProcess,
    chat_chunks,
    chat_completion,
    json_reply,
    sse_reply,
)

BIG = 2**64 - 1
CONFIG = """
server: {{auth: none, watch_config: false}}
providers: {{up: {{plugin: openai, base_url: {url}/v1, api_key: sk-up}}}}
models: {{gpt: {{targets: [{{provider: up, model: big}}], retries: {{attempts: 1}}}}}}
"""
HI = [{"role": "user", "content": "hi"}]


def test_every_api_answers_an_upstream_s_absurd_usage_without_an_internal_error(
    tmp_path: Path,
) -> None:
    answer = chat_completion()
    answer["usage"] = {"prompt_tokens": BIG, "completion_tokens": BIG}
    with FakeUpstream() as upstream:
        upstream.set_default("/v1/chat/completions", json_reply(answer))
        path = tmp_path / "router.yaml"
        path.write_text(CONFIG.format(url=upstream.url))
        with RouterProcess(path) as router, httpx.Client(base_url=router.base_url) as client:
            chat = client.post("/chat/completions", json={"model": "gpt", "messages": HI})
            assert chat.status_code == 200
            assert chat.json()["usage"] == {"prompt_tokens": BIG, "completion_tokens": BIG}
            messages = client.post(
                "/messages", json={"model": "gpt", "max_tokens": 10, "messages": HI}
            )
            assert messages.status_code == 200
            assert messages.json()["usage"]["output_tokens"] == BIG
            responses = client.post("/responses", json={"model": "gpt", "input": "hi"})
            assert responses.status_code == 502  # its total_tokens would pass 64 bits
            error = responses.json()["error"]
            assert error["code"] == "malformed_upstream_response"
            assert "cannot be re-encoded as JSON" in error["message"]
            # streamed: the usage chunk as the upstream sent it, and the stream's end
            upstream.set_default(
                "/v1/chat/completions", sse_reply(chat_chunks(usage=(2**63, 2**63 - 1)))
            )
            body = {"model": "gpt", "messages": HI, "stream": True}
            body["stream_options"] = {"include_usage": True}
            stream = client.post("/chat/completions", json=body)
            assert stream.status_code == 200
            assert f'"prompt_tokens":{2**63}' in stream.text
            assert stream.text.endswith("data: [DONE]\n\n")
            _, err = router.stop()
    assert b"unhandled_error" not in err
