"""Hot reload of a router started as users start it, with `llm-switchyard serve --config PATH`:
ConfigMap updates, reloads that fail for reasons other than the file, and settings that only
a restart applies."""

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

from router.config.loader import load_config_text
from router.graph.compile import compile_graph
from router.graph.reload import POLL_SECONDS, RESTART_ONLY, restart_needed, setting
from router.http.state import RouterState
from router.observability import logs
from router.plugins import ProviderPlugin, provider_plugins
from router.providers.mock import MockProvider, MockTransport
from router.testing import FakeUpstream, RouterProcess, RouterServer, closed_after_test, free_port
from router.testing.fake_upstream import chat_completion, json_reply
from router.types import RoutingGraph

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
        self.client = closed_after_test(
            openai.OpenAI(base_url=base_url, api_key=CLIENT, max_retries=0)
        )
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
            error = admin_config(router.url)["last_error"]
            assert (error["trigger"], error["code"]) == ("watch", "invalid_config")
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


def test_a_config_file_that_cannot_be_read_is_an_invalid_config(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(config("v0", ", watch_config: false"))
    with RouterServer(path) as server:
        path.unlink()
        reply = admin_reload(server.url)
        assert reply.status_code == 400
        assert reply.json()["error"]["code"] == "invalid_config"
        assert f"{path}: cannot read: No such file or directory" in reply.json()["error"]["message"]
        error = admin_config(server.url)["last_error"]
        assert (error["trigger"], error["code"], error["hash"]) == ("admin", "invalid_config", None)
        assert answer_of(server.url) == "v0"


# -- reloads that fail for reasons other than the file ------------------------------------------

EXPLODING_PLUGIN = '''
"""A provider plugin with a bug: its constructor raises, quoting the key it was given."""
from router.providers.mock import MockProvider
from router.spec import hookimpl


class ExplodingProvider(MockProvider):
    def __init__(self, config):
        raise RuntimeError(f"cannot start with key {config.api_key}")


@hookimpl
def register_providers(register):
    register("exploding", ExplodingProvider)
'''


def install_exploding_plugin(site: Path) -> dict[str, str]:
    """The plugin installed into `site` as pip lays one out (module, dist-info with the
    entry point); returns the environment that puts `site` on the router's path."""
    info = site / "llm_router_exploding-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "llm_router_exploding.py").write_text(EXPLODING_PLUGIN)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: llm-switchyard-exploding\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text("[llm_router]\nexploding = llm_router_exploding\n")
    return {"PYTHONPATH": str(site)}


def test_a_reload_that_raises_is_logged_counted_and_shown_for_every_trigger(
    tmp_path: Path,
) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(config("v0"))
    secret = "sk-new-key-of-the-rejected-config"
    broken = config("v1", providers=f"  boom: {{plugin: exploding, api_key: {secret}}}")
    env = {**QUIET, **install_exploding_plugin(tmp_path / "site")}
    router = RouterProcess(path, env=env).start()
    assert router.process is not None

    def failed(count: int, trigger: str) -> None:
        wait_until(lambda: admin_config(router.url)["reloads"]["failed"] == count, trigger)
        status = admin_config(router.url)
        assert status["reloads"] == {"ok": 0, "failed": count}
        error = status["last_error"]
        assert (error["trigger"], error["code"], error["hash"]) == (
            trigger,
            "reload_error",
            sha(broken),
        )
        assert error["issues"] == [f"{path}: RuntimeError: cannot start with key ***"]
        assert status["hash"] == sha(config("v0"))
        assert answer_of(router.url) == "v0"  # the old config keeps serving

    try:
        path.write_text(broken)
        failed(1, "watch")
        router.process.send_signal(signal.SIGHUP)
        failed(2, "sighup")
        reply = admin_reload(router.url)
        assert reply.status_code == 500
        error = reply.json()["error"]
        assert (error["type"], error["code"]) == ("server_error", "reload_failed")
        assert error["message"] == (
            "the reload failed; the active config keeps serving:\n"
            f"{path}: RuntimeError: cannot start with key ***"
        )
        failed(3, "admin")
        metrics = httpx.get(router.url + "/metrics").text
        assert 'llm_router_config_reloads_total{result="failed"} 3\n' in metrics
        assert secret not in reply.text + str(admin_config(router.url))
    finally:
        _, err = router.stop()
    lines = log_lines(err, "config_reload_failed")
    assert [(line["trigger"], line["code"]) for line in lines] == [
        ("watch", "reload_error"),
        ("sighup", "reload_error"),
        ("admin", "reload_error"),
    ]
    assert all("RuntimeError: cannot start with key ***" in line["traceback"] for line in lines)
    assert secret.encode() not in err


class TransportlessProvider(MockProvider):
    """A plugin whose transport fails to open: the graph compiles, attaching it raises."""

    def local_transport(self) -> MockTransport:
        raise RuntimeError("no transport today")


def test_a_transport_that_fails_to_open_leaves_the_old_targets_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failing provider comes first, and `m` is unchanged, so its old target would be
    moved onto a runtime that never got a transport if the swap began before attaching."""
    plugin = ProviderPlugin("transportless", TransportlessProvider)
    monkeypatch.setitem(provider_plugins(), "transportless", plugin)
    path = tmp_path / "router.yaml"
    path.write_text(config("v0", ", watch_config: false"))
    broken = path.read_text().replace("providers:\n", "providers:\n  t: {plugin: transportless}\n")
    with RouterServer(path) as server:
        path.write_text(broken)
        reply = admin_reload(server.url)
        assert reply.status_code == 500, reply.text
        assert "RuntimeError: no transport today" in reply.json()["error"]["message"]
        assert answer_of(server.url) == "v0"
        assert admin_config(server.url)["reloads"] == {"ok": 0, "failed": 1}


def test_a_reload_hook_that_raises_leaves_the_active_secrets_masked() -> None:
    old = compile_graph(*load_config_text(config("a").replace(CLIENT, "sk-old-client-key")))
    new = compile_graph(*load_config_text(config("b").replace(CLIENT, "sk-new-client-key")))
    state = RouterState(old)

    def hook(before: RoutingGraph, after: RoutingGraph) -> None:
        raise RuntimeError("hook failed")

    state.reload_hooks.append(hook)
    with pytest.raises(RuntimeError):
        state.swap(new)
    assert state.graph is old
    assert logs.mask("sk-old-client-key") == logs.MASK
    assert state.redact(b"sk-old-client-key") == logs.MASK.encode()


# -- server settings ------------------------------------------------------------------------------


def test_settings_read_at_start_up_are_reported_until_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    started = config("v0", ", watch_config: false")
    path.write_text(started)
    backend = (
        "rate_limit_backend: {url: 'redis://127.0.0.1:6379/0', key_prefix: b, timeout: 2, "
        "lease_seconds: 20}, header_timeout_seconds: 5, max_header_bytes: 32768, "
        "max_headers: 50, max_connections: 100, send_timeout_seconds: 30"
    )
    router = RouterProcess(path, env=QUIET).start()
    try:
        spend = f"spend: {{currency: EUR, ledger: {{url: 'sqlite:///{tmp_path}/u.db'}}}}\n"
        path.write_text(
            config("v1", f", watch_config: false, host: 0.0.0.0, port: 4999, {backend}") + spend
        )
        reply = admin_reload(router.url)
        assert reply.status_code == 200, reply.text
        assert reply.json()["restart_needed"] == list(RESTART_ONLY)
        assert admin_config(router.url)["restart_needed"] == list(RESTART_ONLY)
        assert answer_of(router.url) == "v1"  # the rest applied, on the address it started on

        path.write_text(config("v2", ", watch_config: false, port: 4999"))
        assert admin_reload(router.url).json()["restart_needed"] == ["server.port"]
        assert admin_config(router.url)["restart_needed"] == ["server.port"]

        path.write_text(started)  # back to what the process runs with: nothing to restart for
        assert admin_reload(router.url).json()["restart_needed"] == []
        assert admin_config(router.url)["restart_needed"] == []
    finally:
        _, err = router.stop()
    warnings = log_lines(err, "config_restart_needed")
    assert [w["keys"] for w in warnings] == [list(RESTART_ONLY), ["server.port"]]
    assert all(w["level"] == "warning" for w in warnings)


def test_watch_config_changed_by_a_reload_stops_and_starts_the_watcher(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(config("a"))
    with RouterProcess(path, env=QUIET) as router:
        path.write_text(config("b", ", watch_config: false"))
        wait_for_answer(router.url, "b")
        path.write_text(config("c", ", watch_config: false"))
        time.sleep(4 * POLL_SECONDS)  # a watcher still running would have seen it by now
        assert answer_of(router.url) == "b"
        assert admin_config(router.url)["reloads"]["ok"] == 1

        path.write_text(config("d"))  # watch_config back on, applied by an asked reload
        assert admin_reload(router.url).status_code == 200
        assert answer_of(router.url) == "d"
        path.write_text(config("e"))
        wait_for_answer(router.url, "e")  # watched again


OTHER_SERVER_SETTINGS = """
server:
  admin_key: {admin}
  watch_config: false
  rate_limit_backend: {{url: "redis://127.0.0.1:{redis_port}/0", on_error: {on_error}}}
{server}
providers:
  up: {{plugin: openai, base_url: "{upstream}/v1", api_key: sk-upstream-served-key}}
models:
  chat: {{targets: [{{provider: up, model: up-model}}]}}
keys:
  app: {{key: {client}}}
rate_limits:
  wide: {{requests_per_minute: 1000}}
"""


def test_every_other_server_setting_applies_at_reload(tmp_path: Path) -> None:
    """`auth`, `admin_key`, `max_body_bytes` (and `max_body_bytes_by_operation`),
    `forward_client_headers`, `drain_seconds`, `rate_limits` and
    `rate_limit_backend.on_error` take effect with the reload."""
    path = tmp_path / "router.yaml"
    upstream = FakeUpstream().start()
    upstream.set_default("/v1/chat/completions", json_reply(chat_completion("up")))
    text = OTHER_SERVER_SETTINGS.replace("{upstream}", upstream.url).replace(
        "{redis_port}",
        str(free_port()),  # nobody listens: the backend is down
    )

    def write(admin: str, on_error: str, server: str) -> None:
        path.write_text(text.format(admin=admin, on_error=on_error, server=server, client=CLIENT))

    def ask(body_size: int = 0, key: str | None = CLIENT) -> httpx.Response:
        messages = [{"role": "user", "content": "x" * body_size}]
        headers = {"x-trace-id": "trace-1"} | ({"authorization": f"Bearer {key}"} if key else {})
        return httpx.post(
            router.url + "/v1/chat/completions",
            json={"model": "chat", "messages": messages},
            headers=headers,
            timeout=10,
        )

    write(ADMIN, "open", "")
    router = RouterProcess(path).start()
    assert router.process is not None
    try:
        assert ask(key=None).status_code == 401
        assert ask(body_size=3000).status_code == 200
        assert "x-trace-id" not in upstream.requests[-1].headers

        admin = "adm-served-reload-2"
        server = "  auth: none\n  max_body_bytes: 2048\n  forward_client_headers: [x-trace-id]"
        write(admin, "open", server + "\n  drain_seconds: 7")
        assert admin_reload(router.url).status_code == 200
        assert admin_config(router.url, admin)["restart_needed"] == []
        assert (
            httpx.get(router.url + "/admin/config", headers={"x-api-key": ADMIN}).status_code == 401
        )
        assert ask(key=None).status_code == 200  # auth: none
        assert upstream.requests[-1].headers["x-trace-id"] == "trace-1"
        too_big = ask(body_size=3000)
        assert too_big.status_code == 413, too_big.text
        # an operation's own limit, over `max_body_bytes`
        write(admin, "open", server + "\n  max_body_bytes_by_operation: {chat: 8192}")
        reload = httpx.post(router.url + "/admin/reload", headers={"x-api-key": admin})
        assert reload.status_code == 200
        assert ask(body_size=3000).status_code == 200

        # A global policy on a backend that is down: admitted while on_error is open...
        write(admin, "open", server + "\n  rate_limits: [wide]")
        reload = httpx.post(router.url + "/admin/reload", headers={"x-api-key": admin})
        assert reload.status_code == 200
        assert ask().status_code == 200
        # ... refused once it is closed.
        write(admin, "closed", server + "\n  rate_limits: [wide]\n  drain_seconds: 7")
        reload = httpx.post(router.url + "/admin/reload", headers={"x-api-key": admin})
        assert reload.status_code == 200
        refused = ask()
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "rate_limit_backend_unavailable"
    finally:
        _, err = router.stop()
        upstream.stop()
    assert [line["drain_seconds"] for line in log_lines(err, "draining")] == [7]


def test_restart_only_settings_name_real_settings() -> None:
    """Every entry of the one list resolves on a config, and a change to it is reported."""
    base, _ = load_config_text(config("a"), "mem.yaml")
    for key in RESTART_ONLY:
        setting(base, key)  # raises AttributeError for a misspelt path
    changed, _ = load_config_text(config("a", ", port: 4999"), "mem.yaml")
    assert restart_needed(base, changed) == ["server.port"]
    assert restart_needed(base, base) == []


BREAKER_CONFIG = """
server: {{auth: none, admin_key: {admin}, watch_config: false}}
providers:
  a: {{plugin: openai, base_url: "{url}/a/v1"}}
  b: {{plugin: openai, base_url: "{url}/b/v1"}}
models:
  chat:
    targets: [{{provider: a, model: ma}}, {{provider: b, model: mb}}]
    retries: {{attempts: 0}}
    breaker: {{consecutive_failures: 2, failure_rate: null, open_for: 600}}
{more}"""


def test_an_open_breaker_stays_open_across_a_reload_of_the_cli_served_router(
    tmp_path: Path, fake_upstream: FakeUpstream
) -> None:
    """A target whose provider and upstream model did not change keeps its live state
    across a reload, worked out in the reload's thread and applied at the swap: its open
    breaker still skips it. A target that changed starts afresh."""
    a, b = "/a/v1/chat/completions", "/b/v1/chat/completions"
    fake_upstream.set_default(a, json_reply({"error": {"message": "down"}}, 503))
    fake_upstream.set_default(b, json_reply(chat_completion("from b", model="mb")))
    path = tmp_path / "router.yaml"
    path.write_text(BREAKER_CONFIG.format(admin=ADMIN, url=fake_upstream.url, more=""))
    router = RouterProcess(path, env=QUIET).start()
    try:
        client = closed_after_test(
            openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0, timeout=10)
        )

        def ask() -> str:
            messages = [{"role": "user", "content": "hi"}]
            answer = client.chat.completions.create(model="chat", messages=messages)
            return answer.choices[0].message.content or ""

        assert [ask(), ask()] == ["from b", "from b"]  # a failed twice: its breaker opens
        assert len(fake_upstream.received(a)) == 2
        other = "  other: {targets: [{provider: b, model: mb2}]}\n"
        path.write_text(BREAKER_CONFIG.format(admin=ADMIN, url=fake_upstream.url, more=other))
        reply = httpx.post(router.url + "/admin/reload", headers={"x-api-key": ADMIN})
        assert reply.json()["result"] == "reloaded"
        assert [ask(), ask()] == ["from b", "from b"]
        assert len(fake_upstream.received(a)) == 2  # still skipped: the breaker was kept

        changed = BREAKER_CONFIG.replace("model: ma}", "model: ma2}")
        path.write_text(changed.format(admin=ADMIN, url=fake_upstream.url, more=other))
        reply = httpx.post(router.url + "/admin/reload", headers={"x-api-key": ADMIN})
        assert reply.json()["result"] == "reloaded"
        assert ask() == "from b"
        assert len(fake_upstream.received(a)) == 3  # a new target: tried again
    finally:
        router.stop()
