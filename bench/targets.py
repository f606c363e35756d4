"""The things compared: how to configure and start each one, pinned to core 0.

Every proxy forwards `POST /v1/chat/completions` for model `bench` with client key
`sk-bench-client` to the fake upstream, which is started separately on core 1. Two more
rows are the router serving the Responses and the Messages API (`router-responses`,
`router-messages`): the same router and config, the clients posting those APIs' requests,
which it translates to the same chat requests upstream. Portkey's
gateway has no client keys and no config file: each request names its route in `x-portkey-*`
headers and carries the upstream key itself, so its target sends those instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.routerconf import (
    CLIENT_KEY,
    EXE,
    MODEL,
    SPEND_LEDGER,
    UPSTREAM_KEY,
    RouterConfig,
    router_env,
    spend_config,
)

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CACHE = BENCH / ".cache"  # git-ignored: the peers' installs, configs and logs of the last run
LITELLM_VENV = CACHE / "litellm-venv"
PORTKEY_DIR = CACHE / "portkey"
PORTKEY_PACKAGE = "@portkey-ai/gateway"
PORTKEY_VERSION = "1.15.2"  # the version measured; `python -m bench` installs exactly this one


@dataclass
class Target:
    name: str
    label: str
    port: int
    command: list[str] = field(default_factory=list)  # empty: nothing to start (direct)
    env: dict[str, str] = field(default_factory=dict)
    key: str = CLIENT_KEY
    model: str = MODEL
    headers: dict[str, str] = field(default_factory=dict)  # sent with every request
    api: str = "chat"  # what the clients post: chat, responses or messages (`API_BODIES`)

    def start(self, log: Path) -> subprocess.Popen[bytes] | None:
        if not self.command:
            return None
        with open(log, "wb") as out:
            return subprocess.Popen(
                ["taskset", "-c", "0", *self.command],
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=CACHE,
            )


LITELLM_CONFIG = """\
model_list:
  - model_name: {model}
    litellm_params:
      model: openai/up-model
      api_base: http://127.0.0.1:{upstream}/v1
      api_key: {upstream_key}
general_settings:
  master_key: {client_key}
litellm_settings:
  telemetry: false
"""

NGINX_CONFIG = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/nginx-body;
  proxy_temp_path {dir}/nginx-proxy;
  upstream up {{ server 127.0.0.1:{upstream}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer {upstream_key}";
      proxy_buffering off;
    }}
  }}
}}
"""


# What the load generators post, per API (the streaming client has its own, `--api`).
HELLO = [{"role": "user", "content": "Hi there, how are you?"}]
API_BODIES: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": ("/v1/chat/completions", {"model": MODEL, "messages": HELLO}),
    "responses": ("/v1/responses", {"model": MODEL, "input": HELLO[0]["content"]}),
    "messages": ("/v1/messages", {"model": MODEL, "max_tokens": 256, "messages": HELLO}),
}


def write(name: str, text: str) -> Path:
    """A generated file in the cache (configs, bodies, key lists)."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / name
    path.write_text(text)
    return path


def build(name: str, port: int, upstream: int) -> Target:
    """The target `name` listening on `port`, forwarding to the upstream on `upstream`."""
    fmt = {
        "port": port,
        "upstream": upstream,
        "upstream_key": UPSTREAM_KEY,
        "client_key": CLIENT_KEY,
        "model": MODEL,
        "dir": CACHE,
    }
    if name == "direct":
        return Target("direct", "direct to the upstream", upstream)
    if name in ("router", "router-responses", "router-messages"):
        config = write("router.yaml", RouterConfig(port, upstream).text())
        command = [EXE, "serve", "--config", str(config)]
        api = name.partition("-")[2] or "chat"
        label = {"chat": "llm-switchyard", "responses": "llm-switchyard, Responses API"}.get(
            api, "llm-switchyard, Messages API"
        )
        return Target(name, label, port, command, router_env(), api=api)
    if name == "router-spend":  # (for `bench.instructions` and the `spend` scenario)
        config = write("router-spend.yaml", spend_config(port, upstream))
        # An empty ledger: one left by earlier runs has a deeper tree (or an older table).
        (CACHE / SPEND_LEDGER).unlink(missing_ok=True)
        command = [EXE, "serve", "--config", str(config)]
        label = "llm-switchyard, a budget and the ledger on"
        return Target(name, label, port, command, router_env())
    if name == "relay":
        command = [sys.executable, "-m", "uvicorn", "bench.relay:app", "--port", str(port)]
        command += ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]
        env = {"BENCH_UPSTREAM": f"http://127.0.0.1:{upstream}", "PYTHONPATH": str(ROOT)}
        return Target("relay", "bare relay (Starlette + aiohttp)", port, command, env)
    if name == "litellm":
        config = write("litellm.yaml", LITELLM_CONFIG.format(**fmt))
        exe = str(LITELLM_VENV / "bin" / "litellm")
        command = [exe, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
        command += ["--num_workers", "1"]
        env = {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # offline: no fetch of the price list
            "LITELLM_TELEMETRY": "False",
            "DISABLE_SCHEMA_UPDATE": "True",
            "NO_PROXY": "*",
        }
        return Target("litellm", f"LiteLLM proxy {litellm_version()}", port, command, env)
    if name == "nginx":
        config = write("nginx.conf", NGINX_CONFIG.format(**fmt))
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        command = [nginx, "-c", str(config), "-p", str(CACHE)]
        return Target("nginx", "nginx reverse proxy", port, command)
    if name == "portkey":
        script = PORTKEY_DIR / "node_modules" / PORTKEY_PACKAGE / "build" / "start-server.js"
        command = ["node", str(script), f"--port={port}", "--headless"]
        headers = {
            "x-portkey-provider": "openai",
            "x-portkey-custom-host": f"http://127.0.0.1:{upstream}/v1",
        }
        label = f"Portkey gateway {portkey_version()}"
        env = {"NODE_ENV": "production"}  # no log viewer, no console spinner
        return Target("portkey", label, port, command, env, UPSTREAM_KEY, MODEL, headers)
    raise ValueError(f"unknown target {name!r}")


def litellm_version() -> str:
    meta = list((LITELLM_VENV / "lib").glob("python*/site-packages/litellm-*.dist-info"))
    return meta[0].name.split("-")[1].removesuffix(".dist") if meta else "?"


def portkey_version() -> str:
    meta = PORTKEY_DIR / "node_modules" / PORTKEY_PACKAGE / "package.json"
    return json.loads(meta.read_text())["version"] if meta.exists() else "?"


def install_portkey() -> None:
    """Portkey's gateway, the pinned version, with the machine's npm into the cache."""
    PORTKEY_DIR.mkdir(parents=True, exist_ok=True)
    manifest = PORTKEY_DIR / "package.json"
    if not manifest.exists():
        manifest.write_text('{"name": "bench-portkey", "private": true}\n')
    command = ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"]
    command.append(f"{PORTKEY_PACKAGE}@{PORTKEY_VERSION}")
    subprocess.run(command, cwd=PORTKEY_DIR, check=True)


ALL = (
    "direct",
    "router",
    "router-responses",
    "router-messages",
    "relay",
    "litellm",
    "portkey",
    "nginx",
)
