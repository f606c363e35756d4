"""The five things measured: how to configure and start each one, pinned to core 0.

Every proxy forwards `POST /v1/chat/completions` for model `bench` with client key
`sk-bench-client` to the fake upstream, which is started separately on core 1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CACHE = BENCH / ".cache"  # git-ignored: LiteLLM's venv, configs and logs of the last run
LITELLM_VENV = CACHE / "litellm-venv"
CLIENT_KEY = "sk-bench-client"
UPSTREAM_KEY = "sk-bench-upstream"
MODEL = "bench"


@dataclass
class Target:
    name: str
    label: str
    port: int
    command: list[str] = field(default_factory=list)  # empty: nothing to start (direct)
    env: dict[str, str] = field(default_factory=dict)
    key: str = CLIENT_KEY
    model: str = MODEL

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


ROUTER_CONFIG = """\
# llm-router, as a user would run it: one OpenAI-compatible provider, a client key,
# default logging (JSON access log at info).
server: {{host: 127.0.0.1, port: {port}, auth: keys}}
providers:
  up:
    plugin: openai
    base_url: http://127.0.0.1:{upstream}/v1
    api_key: {upstream_key}
models:
  {model}:
    targets: [{{provider: up, model: up-model}}]
keys:
  bench: {{key: {client_key}}}
# RATE-LIMIT POLICY: not on main when this benchmark was written. When the router gains
# rate-limit policies, add one here (generous enough never to reject a benchmark request)
# so that its per-request cost is measured too.
"""

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


def _write(name: str, text: str) -> Path:
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
    if name == "router":
        config = _write("router.yaml", ROUTER_CONFIG.format(**fmt))
        exe = str(Path(sys.executable).with_name("llm-router"))
        return Target("router", "llm-router", port, [exe, "serve", "--config", str(config)])
    if name == "relay":
        command = [sys.executable, "-m", "uvicorn", "bench.relay:app", "--port", str(port)]
        command += ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]
        env = {"BENCH_UPSTREAM": f"http://127.0.0.1:{upstream}", "PYTHONPATH": str(ROOT)}
        return Target("relay", "bare relay (Starlette + aiohttp)", port, command, env)
    if name == "litellm":
        config = _write("litellm.yaml", LITELLM_CONFIG.format(**fmt))
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
        config = _write("nginx.conf", NGINX_CONFIG.format(**fmt))
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        command = [nginx, "-c", str(config), "-p", str(CACHE)]
        return Target("nginx", "nginx reverse proxy", port, command)
    raise ValueError(f"unknown target {name!r}")


def litellm_version() -> str:
    meta = list((LITELLM_VENV / "lib").glob("python*/site-packages/litellm-*.dist-info"))
    return meta[0].name.split("-")[1].removesuffix(".dist") if meta else "?"


ALL = ("direct", "router", "relay", "litellm", "nginx")
