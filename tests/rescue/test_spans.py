"""Every rescue attempt has its trace span, like the first try: a continuation, a
regeneration and a hedge, each a child of the request's span."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from router.observability import tracing
from router.testing import (
    FakeUpstream,
    RouterServer,
    refusing_prefill,
    word_stream,
    words,
)

A = "/a/v1/chat/completions"
B = "/b/v1/chat/completions"
CONFIG = """
server: {{auth: none, watch_config: false}}
providers:
  a: {{plugin: openai, base_url: "{url}/a/v1"}}
  b: {{plugin: openai, base_url: "{url}/b/v1"}}
models:
  chat:
    targets: [{{provider: a, model: ma}}, {{provider: b, model: mb}}]
    stream_recovery: continue_or_regenerate
    hedge: {{after: 0.5}}
"""


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure(exporter, batch=False)
    try:
        yield exporter
    finally:
        tracing.configure(None)


def test_each_rescue_attempt_is_a_span(
    tmp_path: Path, fake_upstream: FakeUpstream, spans: InMemorySpanExporter
) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(textwrap.dedent(CONFIG.format(url=fake_upstream.url)))
    whole = words(12)
    fake_upstream.add(A, word_stream(whole, cut_after=6))
    fake_upstream.add(B, refusing_prefill(lambda _: word_stream(whole, model="mb")))
    fake_upstream.add(B, refusing_prefill(lambda _: word_stream(whole, model="mb")))
    with RouterServer(path) as router:
        client = openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0)
        stream = client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "count"}],
            stream=True,
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "".join(
            whole
        )
        fake_upstream.add(A, word_stream(words(2), first_token_delay=10))
        fake_upstream.add(B, word_stream(words(2, stem="b"), model="mb"))
        stream = client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "again"}],
            stream=True,
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    finished = spans.get_finished_spans()
    requests = [s for s in finished if s.name == "POST /v1/chat/completions"]
    attempts = [s for s in finished if s.name.startswith("chat ")]
    # First request: a (cut), b (prefill refused), b (regenerated); second: a, and b's hedge.
    assert [s.name for s in attempts].count("chat ma") == 2
    assert [s.name for s in attempts].count("chat mb") == 3
    assert len(requests) == 2
    ids = {r.context.span_id for r in requests}
    assert all(s.parent is not None and s.parent.span_id in ids for s in attempts)
    refused = [s for s in attempts if s.status.status_code.name == "ERROR"]
    assert len(refused) == 1 and refused[0].name == "chat mb"
