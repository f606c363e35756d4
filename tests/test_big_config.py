"""A config of many keys and models compiles into tables that grow with keys + models, not
keys x models, and a request's rate-limit set is the same as if every pair were compiled."""

from __future__ import annotations

import collections
import gc
import hashlib
import sys
import time

import pytest

from router.config.loader import ConfigError, load_config_text
from router.graph import load, pacing
from router.graph.compile import compile_graph
from router.graph.reload import carry_over
from router.limits.policies import PAIRS_KEPT, LimitTable
from router.types import RoutingGraph


def _config(models: int, keys: int, model_policy_every: int = 0) -> str:
    lines = [
        "server: {auth: keys, rate_limits: [everyone]}",
        "rate_limits:",
        "  everyone: {requests_per_minute: 100000}",
        "  per-key: {requests_per_minute: 50, max_concurrent: 5}",
        "  per-model: {tokens_per_minute: 9000}",
        "providers:",
        "  up: {plugin: openai, base_url: 'http://127.0.0.1:9/v1', api_key: sk-upstream-000}",
        "models:",
    ]
    for m in range(models):
        policy = (
            ", rate_limits: [per-model]"
            if model_policy_every and m % model_policy_every == 0
            else ""
        )
        fallback = f", fallbacks: [m{(m + 1) % models:04d}]" if m % 10 == 0 else ""
        lines.append(f"  m{m:04d}: {{targets: [{{provider: up, model: x}}]{policy}{fallback}}}")
    lines.append("keys:")
    for k in range(keys):
        allowed = '["*"]' if k % 4 == 0 else f'["m{k % models:04d}", "m{(k * 7) % models:04d}"]'
        secret = hashlib.sha256(f"sk-key-{k:05d}".encode()).hexdigest()
        lines.append(f"  k{k:05d}: {{sha256: {secret}, models: {allowed}, rate_limits: [per-key]}}")
    return "\n".join(lines) + "\n"


def _graph(models: int, keys: int, model_policy_every: int = 0) -> RoutingGraph:
    return compile_graph(*load_config_text(_config(models, keys, model_policy_every), "big.yaml"))


def _sizes(graph: RoutingGraph) -> tuple[int, int, int]:
    """Limit sets, reach entries (over distinct allow-lists) and distinct models bodies."""
    reaches = {id(r): r for r in graph.reach.values()}.values()
    reach_entries = sum(len(r.chains) + len(r.context) for r in reaches)
    bodies = len({id(k.models_body) for k in graph.keys.values()})
    return graph.limits.entries(), reach_entries, bodies


def test_tables_grow_with_keys_plus_models_not_their_product() -> None:
    small, large = _graph(20, 200), _graph(80, 800)  # four times each: sixteen times the pairs
    limits_small, reach_small, bodies_small = _sizes(small)
    limits_large, reach_large, bodies_large = _sizes(large)
    assert limits_small == 1 + 200  # the global set and one per key (models and provider: none)
    assert limits_large == 1 + 800
    # Allow-lists of `*` share one Reach and one body: what grows is the two-model lists.
    assert reach_large <= 4.5 * reach_small
    assert bodies_large <= 4.5 * bodies_small
    everyone = [k for k in large.keys.values() if k.name.endswith("0")]
    assert len({id(k.allowed) for k in everyone if len(k.allowed) == 80}) == 1


def test_keys_with_the_same_patterns_share_one_allow_list_and_each_is_checked() -> None:
    """The models of a list of patterns are gathered once per list as written, and lists that
    name the same models share one set and body; an unknown model is still reported for
    every key that names it, at its own line."""
    text = "\n".join(
        [
            "server: {auth: keys}",
            "providers:",
            "  up: {plugin: openai, base_url: 'http://127.0.0.1:9/v1', api_key: sk-upstream-000}",
            "models:",
            "  a1: {targets: [{provider: up, model: x}]}",
            "  a2: {targets: [{provider: up, model: x}]}",
            "  b1: {targets: [{provider: up, model: x}]}",
            "keys:",
            "  one: {sha256: " + "a" * 64 + ", models: ['a*']}",
            "  two: {sha256: " + "b" * 64 + ", models: ['a*']}",
            "  three: {sha256: " + "c" * 64 + ", models: [a2, a1]}",
            "  four: {sha256: " + "d" * 64 + ", models: [b1, nope]}",
            "  five: {sha256: " + "e" * 64 + ", models: [b1, nope]}",
            "  six: {sha256: " + "f" * 64 + ", models: ['*']}",
        ]
    )
    config, source = load_config_text(text + "\n", "keys.yaml")
    with pytest.raises(ConfigError) as raised:
        compile_graph(config, source)
    errors = [str(issue) for issue in raised.value.issues]
    assert errors == [
        "keys.yaml:12: keys.four.models[1]: unknown model 'nope'",
        "keys.yaml:13: keys.five.models[1]: unknown model 'nope'",
    ]
    graph = compile_graph(*load_config_text(text.replace(", nope", "") + "\n", "keys.yaml"))
    by_name = {k.name: k for k in graph.keys.values()}
    assert by_name["one"].allowed == frozenset({"a1", "a2"})
    assert by_name["one"].allowed is by_name["two"].allowed is by_name["three"].allowed
    assert by_name["one"].models_body is by_name["three"].models_body
    assert by_name["four"].allowed == {"b1"} and by_name["four"].allowed is by_name["five"].allowed
    assert by_name["six"].allowed == {"a1", "a2", "b1"}


def test_a_requests_set_is_its_keys_and_its_models_policies_together() -> None:
    graph = _graph(10, 8, model_policy_every=2)
    table: LimitTable = graph.limits
    assert table.entries() == 1 + 8 + 5
    both = table.for_request("k00001", "m0000")  # a key and a model with policies
    assert [p.scope for p in both.policies] == ["global", "model:m0000", "key:k00001"]
    assert {limit.key for limit in both.limits} == {
        "everyone:global:r60000:w",
        "per-model:model:m0000:t60000:w",
        "per-key:key:k00001:r60000",
        "per-key:key:k00001:c",
    }
    assert [limit.policy for limit in both.limits] == [0, 1, 2, 2]
    assert both.counts_tokens and both.lease_keys == ("per-key:key:k00001:c",)
    assert table.for_request("k00001", "m0000") is both  # combined once, then looked up
    key_only = table.for_request("k00001", "m0001")  # the model has no policy
    assert key_only is table.keys["k00001"]
    assert [p.scope for p in key_only.policies] == ["global", "key:k00001"]
    anonymous = table.for_request("nobody", "m0001")  # no key policy, no model policy
    assert anonymous is table.base and [p.scope for p in anonymous.policies] == ["global"]
    assert table.for_request("nobody", "m0002") is table.models["m0002"]


def test_the_combined_pairs_kept_are_bounded() -> None:
    table = _graph(10, 8, model_policy_every=1).limits
    for i in range(PAIRS_KEPT + 10):
        table.pairs[("k00001", f"x{i}")] = table.base  # as if that many pairs had been used
        if len(table.pairs) >= PAIRS_KEPT:
            break
    table.for_request("k00002", "m0003")
    assert len(table.pairs) == 1  # started afresh, with the one just combined


def test_compiling_and_replacing_a_graph_leaves_no_cyclic_garbage() -> None:
    """A reload's compile must not leave work for the garbage collector, which holds the
    interpreter (and so the event loop) while it walks: the YAML nodes, the source map and a
    replaced graph are freed by reference counting alone."""
    text = _config(30, 300, model_policy_every=3)
    old = compile_graph(*load_config_text(text, "big.yaml"))
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        new = compile_graph(*load_config_text(text, "big.yaml"))
        carried = carry_over(old, new)
        del old, new, carried
        assert gc.collect() == 0, collections.Counter(type(o).__name__ for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_a_reloads_compile_runs_young_collections_only_and_with_quick_switches() -> None:
    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    with pacing.loop_first():
        assert gc.isenabled() and gc.get_threshold()[0] == thresholds[0]  # young ones run
        assert gc.get_threshold()[1:] == (load.YOUNG_ONLY, load.YOUNG_ONLY)
        assert sys.getswitchinterval() == pytest.approx(pacing.RELOAD_SWITCH_SECONDS)
    assert gc.get_threshold() == thresholds and sys.getswitchinterval() == interval


def test_overlapping_reloads_put_the_process_settings_back_when_both_are_done() -> None:
    """Switch interval and collector thresholds are the process's: two apps in one process
    reloading at once must not leave the reload's values behind."""
    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    first, second = pacing.loop_first(), pacing.loop_first()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold()[1:] == (load.YOUNG_ONLY, load.YOUNG_ONLY)  # (second: loading)
    assert sys.getswitchinterval() == pytest.approx(pacing.RELOAD_SWITCH_SECONDS, abs=2e-6)
    second.__exit__(None, None, None)
    assert gc.get_threshold() == thresholds and sys.getswitchinterval() == interval


def test_serve_compiles_the_config_once(tmp_path) -> None:
    """`serve` compiles to fail fast and hands that graph to the app it makes in the same
    process; a file changed in between is compiled afresh."""
    path = tmp_path / "router.yaml"
    path.write_text(_config(3, 4))
    graph = load.load_graph(path)
    load.hand_over(path, graph)
    assert load.load_graph_once(str(path)) is graph
    assert load.load_graph_once(path) is not graph  # taken once
    load.hand_over(path, graph)
    path.write_text(_config(3, 5))
    changed = load.load_graph_once(path)
    assert changed is not graph and len(changed.keys) == 5


def _with_budget(text: str) -> str:
    """The same config with a global money budget and a price on its one target."""
    text = text.replace(
        "server: {auth: keys, rate_limits: [everyone]}",
        "server: {auth: keys, rate_limits: [everyone], budgets: [monthly]}\n"
        "budgets:\n  monthly: {amount: 100, period: month}",
    )
    return text.replace(
        "{provider: up, model: x}", "{provider: up, model: x, price: {input: 1, output: 2}}"
    )


def test_a_global_budget_compiles_to_maps_per_key_and_model_not_per_pair() -> None:
    graph = compile_graph(*load_config_text(_with_budget(_config(200, 2_000)), "big.yaml"))
    table = graph.budgets
    assert table.glob and not table.pairs  # nothing combined before a request
    assert len(table.allowed) == 2_000 and len(table.prices) == 200
    first = table.for_request("k00000", "m0007")  # k00000 may use every model
    assert first is not None and [b.name for b in first.budgets] == ["monthly"]
    assert table.for_request("k00000", "m0007") is first  # combined once, then kept
    assert table.for_request("k00001", "m0199") is None  # not a model k00001 may use
    assert len(table.pairs) == 2


def test_the_cli_loads_a_config_with_young_collections_only(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`check` and `serve` load the config as a reload compiles it: the older generations'
    collections, which would walk every object the load made again and again, wait."""
    from router import cli

    seen: list[tuple[int, int, int]] = []
    real = load.load_graph

    def spying(path, environ=None):  # type: ignore[no-untyped-def]
        seen.append(gc.get_threshold())
        return real(path, environ)

    monkeypatch.setattr(load, "load_graph", spying)
    path = tmp_path / "router.yaml"
    path.write_text(
        "server: {auth: none}\nproviders: {m: {plugin: mock}}\n"
        "models: {c: {targets: [{provider: m, model: x}]}}\n"
    )
    before = gc.get_threshold()
    assert cli.main(["check", str(path)]) == 0
    assert seen and seen[0][1:] == (load.YOUNG_ONLY, load.YOUNG_ONLY)
    assert gc.get_threshold() == before


def test_a_reloads_compile_takes_at_most_its_share_of_the_core() -> None:
    """A compile that allocates all the time (as a big config's does) runs, paced, for
    several times its CPU time (about 1 / RELOAD_SHARE): the rest of the core is the loop's."""

    def busy(data: bytes, path: str) -> RoutingGraph:
        started, kept = time.thread_time(), []
        while time.thread_time() - started < 0.1:
            kept.append([{} for _ in range(100)])  # kept, as a compile keeps what it builds
        return None  # type: ignore[return-value]

    paced = pacing.Paced(busy)
    threshold = gc.get_threshold()
    gc.set_threshold(700, *threshold[1:])
    try:
        started = time.monotonic()
        paced.compile(b"", "x.yaml")
        took = time.monotonic() - started
    finally:
        gc.set_threshold(*threshold)
    assert took >= 0.1 / pacing.RELOAD_SHARE * 0.5  # (unpaced: 0.1 s)
    assert paced._pace not in gc.callbacks
