"""What `llm-switchyard check` says of budgets that load but will not do what they seem to
(run as users run it), and what a spent budget does with a request its fallback model
cannot serve, through `llm-switchyard serve`: refused with 429 `budget_exceeded`, never sent
to a model that cannot answer it."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import openai
import pytest

from router.testing import (
    FakeUpstream,
    RouterProcess,
    chat_completion,
    closed_after_test,
    json_reply,
)
from router.testing.server import cli_command

pytest.importorskip("llm_router_telkom")

TELKOM_KEY = "telkom-key-0123456789abcdef012345"


def _check(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [cli_command(), "check", "--config", str(path), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        env={"TELKOM_KEY": TELKOM_KEY, "PATH": "/usr/bin:/bin"},
    )


CHECKED = """
server: {auth: none}
budgets:
  daily: {amount: 10, period: day}
  forgotten: {tokens: 1000, period: day}
  to-telkom: {tokens: 1000, period: day, on_exceeded: fallback, fallback: cheap}
providers:
  up: {plugin: mock}
  telkom: {plugin: telkom, api_key: "${TELKOM_KEY}"}
models:
  draw:
    targets: [{provider: up, model: img, price: {input: 1, output: 1, per_image: 0.04}}]
    budgets: [daily]
  vectors: {targets: [{provider: up, model: emb, price: $P}], budgets: [to-telkom]}
  cheap: {targets: [{provider: telkom, model: telkom-ai, price: $P}]}
""".replace("$P", "{input: 1, output: 0}")


def test_check_warns_of_unpriced_units_a_budget_attached_to_nothing_and_a_partial_fallback(
    tmp_path: Path,
) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(CHECKED)
    out = _check(path)
    assert out.returncode == 0, out.stderr  # warnings, not errors
    assert "OK, 3 warnings" in out.stdout
    warnings = out.stderr
    # a budget defined but named nowhere
    assert (
        "budgets.forgotten: budget attached to nothing, so it limits nothing: name it in "
        "`server.budgets` or in a provider's, model's or key's `budgets`"
    ) in warnings
    # a money budget over a target its provider lets serve transcriptions and speech, whose
    # price has an image price but no audio ones
    assert (
        "models.draw.targets[0]: target up/img may serve speech, transcriptions and translations "
        "(its provider does), but its price has no `per_million_characters` or `per_audio_second`, "
        "while money budget 'daily' applies to requests that may reach it"
    ) in warnings
    # the fallback model serves chat only: the embeddings and the rest are refused instead
    assert "budgets.to-telkom.fallback: model 'cheap' does not serve " in warnings
    assert "embeddings" in warnings and "which model 'vectors' serves" in warnings
    assert "refused with 429 `budget_exceeded`, not sent to it" in warnings
    # each warning names the line it is about
    assert f"{path}:5" in warnings  # budgets.forgotten
    # `--strict` makes them errors
    assert _check(path, "--strict").returncode == 1

    # attached, priced and served: no warning left
    fixed = (
        CHECKED.replace(
            "per_image: 0.04",
            "per_image: 0.04, per_audio_second: 0.0001, per_million_characters: 15",
        )
        .replace("budgets: [daily]", "budgets: [daily, forgotten]")
        .replace(
            "model: telkom-ai,",
            "model: telkom-ai, price: {input: 1, output: 0}}, {provider: up, model: small,",
        )
    )
    path.write_text(fixed)
    out = _check(path)
    assert out.returncode == 0, out.stderr
    assert "OK\n" in out.stdout and "warning" not in out.stderr
    # a price with neither tokens nor a unit price is an error
    path.write_text(fixed.replace("price: {input: 1, output: 0}", "price: {input: 1}", 1))
    out = _check(path)
    assert out.returncode == 1
    assert "give `input` and `output` (per million tokens), or a `per_image`" in out.stderr


def test_a_spent_budget_refuses_what_its_fallback_model_does_not_serve(tmp_path: Path) -> None:
    config = textwrap.dedent(
        """
        server: {{auth: none, watch_config: false}}
        budgets:
          small: {{tokens: 10, period: day, on_exceeded: fallback, fallback: cheap}}
        providers:
          up: {{plugin: openai, base_url: "{url}/v1", api_key: sk-up}}
          telkom: {{plugin: telkom, base_url: "{url}/telkom", api_key: "${{TELKOM_KEY}}"}}
        models:
          main: {{targets: [{{provider: up, model: big}}], budgets: [small]}}
          cheap: {{targets: [{{provider: telkom, model: telkom-ai}}]}}
        """
    )
    embedding = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
        "model": "big",
        "usage": {"prompt_tokens": 10, "total_tokens": 10},
    }
    with FakeUpstream() as upstream:
        upstream.set_default("/v1/embeddings", json_reply(embedding))
        upstream.set_default(
            "/telkom/llm/chat/completions", json_reply(chat_completion("cheap", usage=(3, 1)))
        )
        path = tmp_path / "router.yaml"
        path.write_text(config.format(url=upstream.url))
        with RouterProcess(path, env={"TELKOM_KEY": TELKOM_KEY}) as router:
            client = closed_after_test(
                openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0)
            )
            client.embeddings.create(model="main", input="hello")  # reports 10 tokens: all of it
            # spent: chat goes to the cheaper model, which serves it
            answer = client.chat.completions.with_raw_response.create(
                model="main", messages=[{"role": "user", "content": "hello there, friend"}]
            )
            assert answer.parse().choices[0].message.content == "cheap"
            # embeddings: the cheaper model cannot serve them, so the budget refuses
            with pytest.raises(openai.RateLimitError) as refused:
                client.embeddings.create(model="main", input="hello")
        assert refused.value.code == "budget_exceeded"
        assert "budget 'small' (model:main) of 10 tokens per day is spent" in str(refused.value)
        assert int(refused.value.response.headers["retry-after"]) >= 1
        assert len(upstream.received("/v1/embeddings")) == 1
        assert len(upstream.received("/telkom/llm/chat/completions")) == 1
        assert upstream.received("/v1/chat/completions") == []
