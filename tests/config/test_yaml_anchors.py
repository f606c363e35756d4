"""YAML anchors, aliases and merge keys in a config, as Kubernetes manifests use them: each
place an alias is used gets the whole anchored value (the composed document is let go only
after it is read, and a node an alias shares is read twice), and a key written beside a merge
(`<<: *anchor`) overrides the merged one, while a key written twice is still an error."""

import subprocess
from pathlib import Path

import openai
import pytest

from router.config import ConfigError, load_config_text
from router.testing import FakeUpstream, RouterProcess, chat_completion, json_reply
from router.testing.fake_upstream import Received, Reply
from router.testing.server import cli_command

MESSAGES = [{"role": "user", "content": "hi"}]

CONFIG = """
providers:
  up: {plugin: openai, base_url: "http://127.0.0.1:9/v1", api_key: sk-up}
models:
  chat:
    targets: [&target {provider: up, model: m}]
    retries: &retries {attempts: 2}
  chat-b:
    targets: &both [*target, {<<: *target, model: n}]
    retries: {<<: *retries, attempts: 3}
  chat-c: {targets: *both, retries: {<<: [*retries, {attempts: 1}]}}
keys:
  app: {key: sk-app-key-0001, models: &all [chat, chat-b, chat-c]}
  ops: {key: sk-ops-key-0001, models: *all}
"""


def test_aliases_and_merge_keys_give_every_use_the_whole_value() -> None:
    config, _ = load_config_text(CONFIG)
    models = config.models
    assert [(t.provider, t.model) for t in models["chat"].targets] == [("up", "m")]
    both = [(t.provider, t.model) for t in models["chat-b"].targets]
    assert both == [("up", "m"), ("up", "n")]
    assert [(t.provider, t.model) for t in models["chat-c"].targets] == both
    assert models["chat"].retries.attempts == 2 and models["chat-b"].retries.attempts == 3
    assert models["chat-c"].retries.attempts == 1  # of two merged, the later (as PyYAML)
    assert config.keys["app"].models == config.keys["ops"].models == ["chat", "chat-b", "chat-c"]


def test_a_key_written_twice_beside_a_merge_is_still_an_error() -> None:
    text = CONFIG.replace("{<<: *retries, attempts: 3}", "{<<: *retries, attempts: 3, attempts: 4}")
    with pytest.raises(ConfigError, match=r"<config>:10: models\.chat-b\.retries\.attempts: dup"):
        load_config_text(text)


def test_the_served_router_routes_by_anchored_and_merged_values(tmp_path: Path) -> None:
    """Through `llm-switchyard check` and `serve`, as users run them: the aliased allow-list
    admits the key, and the target merged from the anchor asks for its overriding model."""

    def echo_model(received: Received) -> Reply:
        return json_reply(chat_completion(f"from {received.json()['model']}"))

    with FakeUpstream() as upstream:
        upstream.set_default("/v1/chat/completions", echo_model)
        path = tmp_path / "router.yaml"
        text = CONFIG.replace("http://127.0.0.1:9/v1", upstream.url + "/v1")
        path.write_text(text.replace("chat-c: {", "chat-c: {strategy: round_robin, "))
        checked = subprocess.run(
            [cli_command(), "check", "--config", str(path)], capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        router = RouterProcess(path).start()
        try:
            client = openai.OpenAI(base_url=router.base_url, api_key="sk-ops-key-0001")
            assert sorted(m.id for m in client.models.list()) == ["chat", "chat-b", "chat-c"]
            answers = {
                client.chat.completions.create(model="chat-c", messages=MESSAGES)
                .choices[0]
                .message.content
                for _ in range(2)
            }
            assert answers == {"from m", "from n"}
        finally:
            router.stop()
