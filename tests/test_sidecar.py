"""Running as a sidecar: SIGHUP reloads, SIGTERM drains, deployment files parse."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import openai
import yaml

from router.testing import RouterProcess

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
server: {{watch_config: false, drain_seconds: {drain}}}
providers:
  m: {{plugin: mock, settings: {{answer: "{answer} and more words", chunk_delay: 0.25}}}}
models:
  chat: {{targets: [{{provider: m, model: m-1}}]}}
keys:
  app: {{key: sk-sidecar-client}}
"""


def ask(url: str) -> httpx.Response:
    return httpx.post(
        url + "/v1/chat/completions",
        json={"model": "chat", "messages": [{"role": "user", "content": "x"}]},
        headers={"authorization": "Bearer sk-sidecar-client"},
        timeout=10,
    )


def test_sighup_reloads_and_sigterm_drains_streams_in_flight(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG.format(drain=10, answer="one"))
    router = RouterProcess(path).start()
    try:
        assert router.process is not None
        assert ask(router.url).json()["choices"][0]["message"]["content"].startswith("one")
        path.write_text(CONFIG.format(drain=10, answer="two"))
        router.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while not ask(router.url).json()["choices"][0]["message"]["content"].startswith("two"):
            assert time.monotonic() < deadline, "SIGHUP did not reload"
            time.sleep(0.05)

        # A stream of 4 words, 250 ms apart, is in flight when SIGTERM arrives.
        client = openai.OpenAI(base_url=router.base_url, api_key="sk-sidecar-client")
        stream = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "x"}], stream=True
        )
        received: list[str] = []
        reader = threading.Thread(
            target=lambda: received.extend(
                c.choices[0].delta.content or "" for c in stream if c.choices
            )
        )
        reader.start()
        time.sleep(0.05)
        router.process.send_signal(signal.SIGTERM)
        time.sleep(0.1)
        ready = httpx.get(router.url + "/health/readiness")
        refused = ask(router.url)
        reader.join(10)
        assert ready.status_code == 503
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "shutting_down"
        assert "".join(received) == "two and more words"  # finished, not cut
        assert router.process.wait(10) is not None
    finally:
        _, err = router.stop()
    assert b'"event":"drained"' in err and b'"left_in_flight":0' in err


def test_deployment_files_parse() -> None:
    """Docker cannot run here: check the files at least parse and say what they should."""
    deploy = ROOT / "examples" / "deploy"
    compose = yaml.safe_load((deploy / "docker-compose.yaml").read_text())
    assert "router" in compose["services"]
    documents = list(yaml.safe_load_all((deploy / "kubernetes.yaml").read_text()))
    kinds = {doc["kind"] for doc in documents}
    assert {"ConfigMap", "Pod"} <= kinds
    pod = next(doc for doc in documents if doc["kind"] == "Pod")
    names = [c["name"] for c in pod["spec"]["containers"]]
    assert "llm-router" in names and len(names) >= 2
    config_map = next(doc for doc in documents if doc["kind"] == "ConfigMap")
    from router.config.loader import load_config_text

    load_config_text(
        config_map["data"]["router.yaml"],
        "configmap",
        {"ROUTER_KEY": "x" * 8, "OPENAI_API_KEY": "y" * 8},
    )
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "USER " in dockerfile and "HEALTHCHECK" in dockerfile
