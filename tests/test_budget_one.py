"""The usual request's budgets (`OneBudget`, one calendar budget in this process) against the
general path (`CallBudget`): the same reservation, headers, settled figures and sums, for
answers with usage, without it, failed, cut streams, money and tokens. The
served budget tests run through `OneBudget` wherever no provider has a budget, and through
`CallBudget` otherwise; this holds the two to the same figures case by case."""

from __future__ import annotations

import asyncio
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from router.config.server import RateLimitBackendConfig
from router.graph.load import load_graph
from router.limits.admission import Limiter
from router.observability.access import RequestRecord
from router.spend.budget_admission import admit, admit_now
from router.spend.call_budget import CallBudget
from router.spend.one_budget import OneBudget
from router.types import Call, Operation, RoutingGraph

CONFIG = """
server: {auth: keys, watch_config: false}
budgets:
  money: {amount: 3, period: day, timezone: Europe/Paris}
  tokens: {tokens: 100000, period: month, timezone: UTC}
providers:
  up: {plugin: openai, base_url: "http://127.0.0.1:9/v1", api_key: sk-up}
models:
  priced:
    targets: [{provider: up, model: big, price: {input: 1000, output: 2000}}]
    budgets: [money]
  counted: {targets: [{provider: up, model: big}], budgets: [tokens]}
keys:
  app: {key: sk-app}
"""
BODY = {"messages": [{"role": "user", "content": "hello there, how are you today?"}]}


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> RoutingGraph:
    path = Path(tmp_path_factory.mktemp("one")) / "router.yaml"
    path.write_text(textwrap.dedent(CONFIG))
    return load_graph(path, {})


def _call(graph: RoutingGraph, model: str, body: dict[str, Any]) -> Call:
    key = next(k for k in graph.keys.values() if k.name == "app")
    return Call(Operation.CHAT, body, False, key, "req-1", graph.routes[model], 0.0)


def _admitted(graph: RoutingGraph, model: str, body: dict[str, Any], one: bool) -> Any:
    """(budget, call, limiter): admitted by `admit_now` (one) or by `admit`, each on a fresh
    in-process limiter."""
    limiter = Limiter(RateLimitBackendConfig())
    call = _call(graph, model, body)
    graph.budgets.pairs.clear()
    bset = graph.budgets.for_request("app", model)
    assert bset is not None
    bset.counters(time.time())  # (a set's first request goes through `admit`, which does this)
    budget = admit_now(limiter, graph, call) if one else asyncio.run(admit(limiter, graph, call))
    assert isinstance(budget, OneBudget if one else CallBudget)
    call.budget = budget
    return budget, call, limiter


CASES = [
    # (model, body, usage, status, answered, relayed characters of a cut stream)
    ("priced", BODY, {"prompt_tokens": 12, "completion_tokens": 30}, 200, True, None),
    ("priced", BODY, {"prompt_tokens": 12, "completion_tokens": 30,
                      "prompt_tokens_details": {"cached_tokens": 8}}, 200, True, None),
    ("priced", {**BODY, "max_tokens": 50}, None, 200, True, None),  # no usage: estimate stands
    ("priced", BODY, None, 502, False, None),  # failed: nothing spent
    ("priced", BODY, None, 200, True, 140),  # a stream cut before its usage
    ("priced", BODY, {"prompt_tokens": 12, "completion_tokens": 30}, 499, True, None),
    ("counted", BODY, {"prompt_tokens": 12, "completion_tokens": 30}, 200, True, None),
    ("counted", BODY, None, 200, True, None),
    ("counted", BODY, {"prompt_tokens": True, "completion_tokens": -3}, 200, True, None),
]  # fmt: skip


@pytest.mark.parametrize(("model", "body", "usage", "status", "answered", "relayed"), CASES)
def test_one_budget_reserves_shows_and_settles_as_the_general_path_does(
    graph: RoutingGraph,
    model: str,
    body: dict[str, Any],
    usage: dict[str, Any] | None,
    status: int,
    answered: bool,
    relayed: int | None,
) -> None:
    seen = []
    for one in (True, False):
        budget, call, limiter = _admitted(graph, model, body, one)
        reserved = dict(limiter.local.sums)
        headers = budget.header_pairs()
        call.target = graph.routes[model].targets[0] if answered else None
        call.usage = usage
        record = RequestRecord("POST", "/v1/chat/completions", "req-1", 0.0, None)
        record.status = status
        if relayed is not None:
            record.relay = SimpleNamespace(completion_chars=relayed, successor=None)
        budget.settle(record, call)
        budget.settle(record, call)  # once only
        seen.append((reserved, headers, budget.counted, dict(limiter.local.sums)))
    assert seen[0] == seen[1]
    reserved, headers, counted, settled = seen[0]
    assert [name for name, _ in headers] == [
        b"x-budget-limit", b"x-budget-remaining", b"x-budget-unit", b"x-budget-reset"
    ]  # fmt: skip
    assert next(iter(reserved.values())) > 0
    assert counted is not None
    # the estimate stands only for an answer without usage; anything else replaces it
    assert (settled == reserved) == (usage is None and relayed is None and status == 200)


def test_admit_now_takes_the_general_path_where_a_provider_has_a_budget(
    tmp_path: Path,
) -> None:
    text = textwrap.dedent(CONFIG).replace("api_key: sk-up}", "api_key: sk-up, budgets: [tokens]}")
    path = tmp_path / "router.yaml"
    path.write_text(text)
    graph = load_graph(path, {})
    limiter = Limiter(RateLimitBackendConfig())
    call = _call(graph, "priced", {**BODY, "max_tokens": 10})
    assert admit_now(limiter, graph, call) is False  # the set's first: `admit` starts it
    assert isinstance(asyncio.run(admit(limiter, graph, call)), CallBudget)
    assert isinstance(admit_now(limiter, graph, call), CallBudget)


@pytest.mark.parametrize("one", [True, False])
def test_a_request_settled_after_its_period_ended_leaves_no_counter_behind(
    graph: RoutingGraph, one: bool
) -> None:
    """A request admitted in one period and ending in the next: the old period's counter was
    forgotten when the new one started (`CallBudget._retire`), and settling must not make it
    again (one stray counter per request in flight at every period's end, forever)."""
    budget, call, limiter = _admitted(graph, "priced", BODY, one)
    sums = limiter.local.sums
    (key,) = sums
    sums.pop(key)  # what the new period's first admission does to the old counter
    call.target = graph.routes["priced"].targets[0]
    call.usage = {"prompt_tokens": 12, "completion_tokens": 30}
    record = RequestRecord("POST", "/v1/chat/completions", "req-1", 0.0, None)
    record.status = 200
    budget.settle(record, call)
    assert budget.counted == (12, 0, 30, 72_000_000)
    assert key not in sums
