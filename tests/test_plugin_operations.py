"""A plugin adds an operation of its own, and `llm-switchyard serve` serves it like the built-in
ones: its POST path, routed by model, checked, limited in its own unit, listed by
`/v1/models`, and refused with a 400 naming the model and the operation where no target
serves it. The plugin is installed the way users install one, through an entry point
(tests/widget_plugin)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from router.operations import register
from router.testing import FakeUpstream, RouterProcess, json_reply
from router.types import Operation

PLUGIN_SOURCE = Path(__file__).parent / "widget_plugin"
CONFIG = """
server: {{auth: none}}
providers:
  factory: {{plugin: widgets, base_url: "{url}/factory"}}
  backup-factory: {{plugin: widgets, base_url: "{url}/backup"}}
  chat: {{plugin: openai, base_url: "{url}/v1"}}
rate_limits:
  three-widgets: {{tokens_per_minute: 30}}
models:
  widget:
    targets: [{{provider: factory, model: w-1}}, {{provider: backup-factory, model: w-2}}]
    retries: {{attempts: 0}}
  limited-widget:
    targets: [{{provider: factory, model: w-1}}]
    rate_limits: [three-widgets]
  chat:
    targets: [{{provider: chat, model: gpt}}]
keys: {{}}
"""


def _install_plugin(site: Path) -> dict[str, str]:
    """The test plugin as an installed distribution: its entry point in a dist-info folder
    on PYTHONPATH, next to its module. Returns the environment that sees it."""
    info = site / "llm_router_widgets-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: llm-switchyard-widgets\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text("[llm_router]\nwidgets = llm_router_widgets\n")
    path = [str(site), str(PLUGIN_SOURCE), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(p for p in path if p)}


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[RouterProcess, FakeUpstream]]:
    tmp = tmp_path_factory.mktemp("widgets")
    upstream = FakeUpstream().start()
    config = tmp / "router.yaml"
    config.write_text(CONFIG.format(url=upstream.url))
    router = RouterProcess(config, env=_install_plugin(tmp / "site"))
    try:
        router.start()
        yield router, upstream
    finally:
        router.stop()
        upstream.stop()


def _made(name: str, model: str) -> dict:
    return {"made": {"widget_name": name, "model": model, "serial": 7}}


def test_a_plugins_operation_is_served_with_failover(served):
    router, upstream = served
    upstream.add("/factory/make-widget", json_reply({"error": {"message": "jammed"}}, 503))
    upstream.add("/backup/make-widget", json_reply(_made("sprocket", "w-2")))
    answer = httpx.post(router.base_url + "/widgets", json={"model": "widget", "name": "sprocket"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"object": "widget", "name": "sprocket", "by": "w-2"}
    assert answer.headers["x-router-provider"] == "backup-factory"
    (sent,) = upstream.received("/backup/make-widget")
    assert sent.json() == {"model": "w-2", "widget_name": "sprocket"}
    line = router.wait_for_line(lambda raw: b'"path":"/v1/widgets"' in raw)
    assert b'"outcome":"answered"' in line
    # also without the /v1 prefix, like every operation
    upstream.add("/factory/make-widget", json_reply(_made("gear", "w-1")))
    bare = httpx.post(router.url + "/widgets", json={"model": "widget", "name": "gear"})
    assert bare.json()["by"] == "w-1"


def test_a_plugins_operation_checks_its_body_and_counts_its_own_unit(served):
    router, upstream = served
    url = router.base_url + "/widgets"
    missing = httpx.post(url, json={"model": "widget"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "name"
    wrong = httpx.post(url, json={"model": "widget", "name": 3})
    assert wrong.json()["error"] == {
        "message": "'name' must be a string",
        "type": "invalid_request_error",
        "param": "name",
        "code": None,
    }
    upstream.set_default("/factory/make-widget", json_reply(_made("cog", "w-1")))
    # 30 a minute at 10 a widget (the plugin's unit): this one takes the budget whole
    ok = httpx.post(url, json={"model": "limited-widget", "name": "cog", "count": 3})
    assert ok.status_code == 200
    refused = httpx.post(url, json={"model": "limited-widget", "name": "cog"})
    assert refused.status_code == 429 and "three-widgets" in refused.json()["error"]["message"]


def test_a_model_without_the_operation_answers_400_naming_both(served):
    router, upstream = served
    answer = httpx.post(router.base_url + "/widgets", json={"model": "chat", "name": "x"})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "unsupported_operation" and error["param"] == "model"
    assert error["message"] == (
        "model 'chat' does not serve widgets (POST /v1/widgets); it serves: chat, "
        "completions, embeddings, images, image_edits, image_variations, speech, "
        "transcriptions, translations, moderations, rerank, "
        "responses, messages, count_tokens, input_tokens"
    )
    chat = httpx.post(
        router.base_url + "/chat/completions",
        json={"model": "widget", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert chat.status_code == 400
    assert chat.json()["error"]["message"].startswith(
        "model 'widget' does not serve chat (POST /v1/chat/completions); it serves: widgets"
    )
    assert not upstream.received("/v1/chat/completions")


def test_models_list_the_plugins_operation(served):
    router, _ = served
    models = {m["id"]: m for m in httpx.get(router.base_url + "/models").json()["data"]}
    assert models["widget"]["operations"] == ["widgets"]
    assert "widgets" not in models["chat"]["operations"]


def test_an_operation_whose_name_or_path_is_taken_is_refused():
    with pytest.raises(ValueError, match="clashes with 'chat'"):
        register(Operation("chat", "/chats"))
    with pytest.raises(ValueError, match="clashes with 'rerank'"):
        register(Operation("rank", "/rerank"))
