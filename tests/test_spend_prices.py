"""Prices: compiled once into whole nanos per million tokens, a target's own or its
provider's, a cost exact to the nano, and `check` warnings for targets left without one."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from router.config import ConfigError
from router.graph.load import load_graph
from router.spend.config import PriceConfig
from router.spend.prices import Price, compile_price, cost_nanos, tokens
from router.testing.server import cli_command

CONFIG = """
server: {{auth: none}}
providers:
  a:
    plugin: mock
    prices:
      big: {{input: 2.5, cached_input: 1.25, output: 10}}
      {unused}
  b: {{plugin: mock}}
models:
  chat:
    targets:
      - {{provider: a, model: big}}
      - {{provider: a, model: big, price: {{input: 3, output: 12}}}}
      - {{provider: b, model: other{b_price}}}
"""


def _write(tmp_path: Path, b_price: str = "", unused: str = "") -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(textwrap.dedent(CONFIG.format(b_price=b_price, unused=unused)))
    return path


def test_prices_compile_to_whole_nanos_per_million_tokens():
    assert compile_price(PriceConfig(input=2.5, output=10)) == Price(
        2_500_000_000, 2_500_000_000, 10_000_000_000
    )  # no cached price: the input price
    # Decimal from what the YAML wrote: 0.1 is 100_000_000 nanos, not 100_000_000.000000005.
    cheap = compile_price(PriceConfig(input=0.1, cached_input=0.0375, output=0.3))
    assert cheap == Price(100_000_000, 37_500_000, 300_000_000)


def test_unit_prices_compile_to_nanos_and_round_once():
    from router.spend.prices import request_nanos

    price = compile_price(
        PriceConfig(per_image=0.04, per_audio_second=0.0001, per_million_characters=15)
    )
    assert price == Price(0, 0, 0, 40_000_000, 100_000, 15_000_000_000)  # no tokens: 0
    assert request_nanos(price, "images", 0, 0, 0, 3) == 120_000_000
    # milliseconds of audio: 7.5 s at 0.0001 a second; 1 ms rounds half up to a nano
    assert request_nanos(price, "transcriptions", 0, 0, 0, 7_500) == 750_000
    assert request_nanos(price, "transcriptions", 0, 0, 0, 1) == 100
    assert request_nanos(price, "speech", 0, 0, 0, 11) == 165_000  # characters
    # an operation's units without their price: no cost; tokens are priced as ever
    tokens_only = compile_price(PriceConfig(input=1, output=2))
    assert request_nanos(tokens_only, "images", 0, 0, 0, 1) is None
    assert request_nanos(tokens_only, "images", 10, 0, 5, 0) == 20_000


def test_a_cost_is_exact_to_the_nano_and_sums_do_not_drift():
    price = compile_price(PriceConfig(input=0.1, cached_input=0.025, output=0.4))
    # 1000 prompt tokens (400 cached), 250 completion: 600 x 0.1 + 400 x 0.025 + 250 x 0.4
    # = 170 per million tokens = 0.00017 = 170_000 nanos.
    assert cost_nanos(price, 1000, 400, 250) == 170_000
    # An embedding of 3 tokens at 0.02 per million: 60 nanos, not rounded away.
    assert cost_nanos(compile_price(PriceConfig(input=0.02, output=0)), 3, 0, 0) == 60
    # A million such rows add up exactly: integers.
    assert sum(cost_nanos(price, 7, 0, 3) for _ in range(1_000_000)) == 1_000_000 * 1_900
    # Cached tokens are part of the prompt; more cached than prompt is the upstream's error.
    assert cost_nanos(price, 10, 50, 0) == cost_nanos(price, 10, 10, 0)


def test_tokens_are_read_from_the_openai_usage_object():
    usage = {
        "prompt_tokens": 12,
        "completion_tokens": 5,
        "prompt_tokens_details": {"cached_tokens": 8},
    }
    assert tokens(usage) == (12, 8, 5)
    assert tokens({"prompt_tokens": 8, "total_tokens": 8}) == (8, 0, 0)  # embeddings
    assert tokens({"prompt_tokens": "12", "completion_tokens": -1}) == (0, 0, 0)
    assert tokens(None) == (0, 0, 0)


def test_a_target_uses_its_own_price_else_its_providers(tmp_path):
    graph = load_graph(_write(tmp_path))
    first, second, third = graph.routes["chat"].targets
    assert first.price == Price(2_500_000_000, 1_250_000_000, 10_000_000_000)
    assert second.price == Price(3_000_000_000, 3_000_000_000, 12_000_000_000)
    assert third.price is None


def test_check_warns_of_a_target_without_a_price_when_others_have_one(tmp_path):
    path = _write(tmp_path)
    graph = load_graph(path)
    (warning,) = [str(w) for w in graph.warnings]
    assert "models.chat.targets[2]: target b/other has no price" in warning
    done = subprocess.run(
        [cli_command(), "check", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert "warning: models.chat.targets[2]: target b/other has no price" in done.stderr
    strict = subprocess.run(
        [cli_command(), "check", "--strict", str(path)], capture_output=True, text=True, timeout=60
    )
    assert strict.returncode == 1 and "has no price" in strict.stderr

    priced = load_graph(_write(tmp_path, b_price=", price: {input: 1, output: 1}"))
    assert priced.warnings == ()
    unused = load_graph(
        _write(tmp_path, ", price: {input: 1, output: 1}", "gone: {input: 1, output: 1}")
    )
    (warning,) = [str(w) for w in unused.warnings]
    assert (
        "providers.a.prices.gone: no target of provider 'a' uses upstream model 'gone'" in warning
    )


def test_no_warning_when_no_target_has_a_price(tmp_path):
    path = tmp_path / "router.yaml"
    path.write_text(
        "server: {auth: none}\nproviders: {m: {plugin: mock}}\n"
        "models: {d: {targets: [{provider: m, model: e}]}}\n"
    )
    assert load_graph(path).warnings == ()


@pytest.mark.parametrize(
    ("spend", "message"),
    [
        ("{currency: usd}", "spend.currency"),
        ("{ledger: {url: 'mysql://x'}}", "must start with sqlite:/// or postgresql://"),
        ("{ledger: {url: 'sqlite:///'}}", "give a file"),
        ("{ledger: {queue_size: 0}}", "spend.ledger.queue_size"),
        ("{ledger: {batch: 10}}", "spend.ledger.batch"),
    ],
)
def test_bad_spend_settings_are_config_errors(tmp_path, spend, message):
    path = tmp_path / "router.yaml"
    path.write_text(
        f"spend: {spend}\nserver: {{auth: none}}\nproviders: {{m: {{plugin: mock}}}}\n"
        "models: {d: {targets: [{provider: m, model: e}]}}\n"
    )
    with pytest.raises(ConfigError) as failed:
        load_graph(path)
    assert message in str(failed.value)


def test_a_negative_price_is_a_config_error(tmp_path):
    path = tmp_path / "router.yaml"
    path.write_text(
        "server: {auth: none}\nproviders: {m: {plugin: mock}}\n"
        "models: {d: {targets: [{provider: m, model: e, price: {input: -1, output: 1}}]}}\n"
    )
    with pytest.raises(ConfigError) as failed:
        load_graph(path)
    assert "models.d.targets[0].price.input" in str(failed.value)


def test_a_postgresql_ledger_without_asyncpg_is_a_config_error(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "asyncpg" else real(name, *a)
    )
    path = tmp_path / "router.yaml"
    path.write_text(
        "spend: {ledger: {url: 'postgresql://u@db/ledger'}}\nserver: {auth: none}\n"
        "providers: {m: {plugin: mock}}\nmodels: {d: {targets: [{provider: m, model: e}]}}\n"
    )
    with pytest.raises(ConfigError) as failed:
        load_graph(path)
    assert "spend.ledger.url" in str(failed.value)
    assert "pip install 'llm-switchyard[postgres]'" in str(failed.value)
