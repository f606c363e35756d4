"""Hot reload of a router started as users start it, with `llm-router serve --config PATH`."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from router.testing import RouterProcess

ADMIN = "adm-served-reload"
CLIENT = "sk-served-reload-client"
QUIET = {"LLM_ROUTER_ACCESS_LOG": "false"}  # warnings and errors only: stderr is a pipe


def config(answer: str, server: str = "", providers: str = "") -> str:
    return f"""
server: {{admin_key: {ADMIN}{server}}}
providers:
  m: {{plugin: mock, settings: {{answer: "{answer}", chunk_delay: 0.002}}}}
{providers}
models:
  chat: {{targets: [{{provider: m, model: m-1}}]}}
keys:
  app: {{key: {CLIENT}}}
"""


INVALID = [
    "providers:\n  m: {plugin: mock\n",  # YAML syntax error
    "providers: {m: {plugin: mock}}\nmodels: {chat: {targets: []}}\n",  # schema error
    config("x").replace("provider: m,", "provider: nowhere,"),  # reference error
]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class ConfigMap:
    """A mounted ConfigMap, laid out and updated as kubelet does: `config.yaml` links to
    `..data/config.yaml`, `..data` to a timestamped directory; an update writes a new
    directory, renames a fresh link over `..data`, then deletes the old directory."""

    def __init__(self, root: Path, text: str) -> None:
        self.root = root
        self.version = 0
        self.current: str | None = None
        root.mkdir()
        self.update(text)
        self.path = root / "config.yaml"
        self.path.symlink_to("..data/config.yaml")

    def update(self, text: str) -> None:
        self.version += 1
        name = f"..2026_12_01_10_00_{self.version:02d}.{123456789 + self.version}"
        (self.root / name).mkdir()
        (self.root / name / "config.yaml").write_text(text)
        (self.root / "..data_tmp").symlink_to(name)
        os.rename(self.root / "..data_tmp", self.root / "..data")
        if self.current is not None:
            shutil.rmtree(self.root / self.current)
        self.current = name


class Load:
    """A client thread sending chat requests (every other one streamed) the whole time."""

    def __init__(self, base_url: str) -> None:
        self.client = openai.OpenAI(base_url=base_url, api_key=CLIENT, max_retries=0)
        self.failures: list[str] = []
        self.count = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        messages: Any = [{"role": "user", "content": "hi"}]
        while not self.stop.is_set():
            try:
                if self.count % 2:
                    chunks = self.client.chat.completions.create(
                        model="chat", messages=messages, stream=True
                    )
                    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
                else:
                    reply = self.client.chat.completions.create(model="chat", messages=messages)
                    text = reply.choices[0].message.content or ""
                if not text:
                    self.failures.append("empty answer")
            except Exception as exc:
                self.failures.append(repr(exc))
            self.count += 1

    def progress(self) -> None:
        """Until a few more requests went through: the load runs through every phase."""
        target = self.count + 3
        wait_until(lambda: self.count >= target, "client requests")

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


def answer_of(url: str) -> str:
    reply = httpx.post(
        url + "/v1/chat/completions",
        json={"model": "chat", "messages": [{"role": "user", "content": "x"}]},
        headers={"authorization": f"Bearer {CLIENT}"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    return str(reply.json()["choices"][0]["message"]["content"])


def admin_config(url: str, admin: str = ADMIN) -> dict[str, Any]:
    reply = httpx.get(url + "/admin/config", headers={"authorization": f"Bearer {admin}"})
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def admin_reload(url: str) -> httpx.Response:
    return httpx.post(url + "/admin/reload", headers={"x-api-key": ADMIN}, timeout=10)


def wait_until(check: Callable[[], bool], what: str, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {within}s")
        time.sleep(0.02)


def wait_for_answer(url: str, expected: str) -> None:
    wait_until(lambda: answer_of(url) == expected, f"answer {expected!r}")


def wait_for_rejection(url: str, digest: str) -> None:
    """Until `/admin/config` reports the file with this hash as the last one rejected."""

    def rejected() -> bool:
        return (admin_config(url)["last_error"] or {}).get("hash") == digest

    wait_until(rejected, f"rejection of {digest[:8]}")


def log_lines(stderr: bytes, event: str) -> list[dict[str, Any]]:
    lines = (json.loads(line) for line in stderr.splitlines() if line.startswith(b"{"))
    return [line for line in lines if line.get("event") == event]


# -- ConfigMap updates -------------------------------------------------------------------------


def test_configmap_updates_reach_a_router_started_by_the_cli(tmp_path: Path) -> None:
    cm = ConfigMap(tmp_path / "router", config("v0"))
    with RouterProcess(cm.path, env=QUIET) as router, Load(router.base_url) as load:
        assert router.process is not None
        assert admin_config(router.url)["path"] == str(cm.path)  # as given, links unresolved
        for version in range(1, 4):
            load.progress()
            bad = INVALID[version - 1]
            cm.update(bad)
            wait_for_rejection(router.url, sha(bad))
            load.progress()
            assert answer_of(router.url) == f"v{version - 1}"  # the last valid one serves on
            cm.update(config(f"v{version}"))
            wait_for_answer(router.url, f"v{version}")
        status = admin_config(router.url)
        assert status["reloads"] == {"ok": 3, "failed": 3}
        assert status["last_error"] is None and status["hash"] == sha(config("v3"))

        # SIGHUP and POST /admin/reload read the file through the links too.
        router.process.send_signal(signal.SIGHUP)
        wait_until(lambda: admin_config(router.url)["reloads"]["ok"] == 4, "SIGHUP reload")
        reply = admin_reload(router.url)
        assert reply.status_code == 200, reply.text
        assert reply.json()["result"] == "reloaded" and reply.json()["hash"] == sha(config("v3"))
        assert admin_config(router.url)["reloads"] == {"ok": 5, "failed": 3}
        load.progress()
    assert load.failures == []


def test_a_relative_config_path_keeps_following_the_configmap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cm = ConfigMap(tmp_path / "router", config("r0"))
    monkeypatch.chdir(tmp_path)  # the router process starts here
    with RouterProcess(Path("router") / "config.yaml", env=QUIET) as router:
        assert admin_config(router.url)["path"] == str(Path.cwd() / "router" / "config.yaml")
        for version in (1, 2):
            cm.update(config(f"r{version}"))
            wait_for_answer(router.url, f"r{version}")
        assert admin_reload(router.url).status_code == 200
