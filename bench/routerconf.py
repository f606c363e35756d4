"""The router's configs for the benchmark, written as a user would write them.

Secrets are referenced, not inline: the upstream key is `${BENCH_UPSTREAM_KEY}`, the client
key `${BENCH_CLIENT_KEY}` and the admin key `${BENCH_ADMIN_KEY}`, all set in the router's
environment (`router_env`). Every
config has one client key with a generous rate-limit policy (requests per minute and
concurrency), so that its per-request cost is part of the figures without ever rejecting.
`server` settings beyond the ones written here come from `--router-server KEY=VALUE`, so a
setting the router gains (a connection limit, say) can be raised without a change here.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

CLIENT_KEY = "sk-bench-client"
UPSTREAM_KEY = "sk-bench-upstream"
ADMIN_KEY = "sk-bench-admin-0123456789abcdef"
LIMITED_KEY = "sk-bench-limited"  # a key with a small budget, to see limits shared exactly
MODEL = "bench"
EXE = str(Path(sys.executable).with_name("llm-switchyard"))


CLIENT_KEY_LINE = '  bench: {key: "${BENCH_CLIENT_KEY}", rate_limits: [per-app]}'


def router_env() -> dict[str, str]:
    """The environment the router's `${...}` references read."""
    return {
        "BENCH_UPSTREAM_KEY": UPSTREAM_KEY,
        "BENCH_ADMIN_KEY": ADMIN_KEY,
        "BENCH_CLIENT_KEY": CLIENT_KEY,
        "BENCH_LIMITED_KEY": LIMITED_KEY,
    }


@dataclass
class RouterConfig:
    """A small config: provider `up` (and any in `more_providers`, all at the one fake
    upstream), the given public models (public name: upstream model, whose name may pick a
    stream shape of the fake upstream; `provider/model` routes to another provider than
    `up`), one client key."""

    port: int
    upstream: int
    models: dict[str, str] = field(default_factory=lambda: {MODEL: "up-model"})
    server: dict[str, object] = field(default_factory=dict)  # extra `server:` settings
    provider: dict[str, object] = field(default_factory=dict)  # extra settings of `up`
    more_providers: dict[str, dict[str, object]] = field(default_factory=dict)
    model_settings: dict[str, dict[str, object]] = field(default_factory=dict)  # by public name
    max_concurrent: int = 10_000
    admin: bool = False
    backend_url: str | None = None
    limited: int | None = None  # requests a minute for a second key, `limited`
    top: str = ""  # more top-level YAML (e.g. `budgets:`, `spend:`), written as given

    def text(self) -> str:
        lines = [
            "# llm-switchyard as a user would run it: one OpenAI-compatible provider, a client key",
            "# with a rate-limit policy that never rejects a benchmark request, default logging.",
            "server:",
            "  host: 127.0.0.1",
            f"  port: {self.port}",
            "  auth: keys",
        ]
        if self.admin:
            lines.append('  admin_key: "${BENCH_ADMIN_KEY}"')
        if self.backend_url:
            lines += ["  rate_limit_backend:", f"    url: {self.backend_url}"]
        lines += [f"  {name}: {json.dumps(value)}" for name, value in self.server.items()]
        lines += [
            "rate_limits:",
            f"  per-app: {{requests_per_minute: 100000000, max_concurrent: {self.max_concurrent}}}",
            *([f"  exact: {{requests_per_minute: {self.limited}}}"] if self.limited else []),
            "providers:",
        ]
        for name, settings in {"up": self.provider, **self.more_providers}.items():
            lines += [
                f"  {name}:",
                "    plugin: openai",
                f"    base_url: http://127.0.0.1:{self.upstream}/v1",
                '    api_key: "${BENCH_UPSTREAM_KEY}"',
            ]
            lines += [f"    {key}: {json.dumps(value)}" for key, value in settings.items()]
        lines.append("models:")
        for public, upstream_model in self.models.items():
            provider, _, model = upstream_model.rpartition("/")
            target = f"{{provider: {provider or 'up'}, model: {model}}}"
            settings = "".join(
                f", {key}: {json.dumps(value)}"
                for key, value in self.model_settings.get(public, {}).items()
            )
            lines.append(f"  {public}: {{targets: [{target}]{settings}}}")
        lines += ["keys:", CLIENT_KEY_LINE]
        if self.limited:
            lines.append('  limited: {key: "${BENCH_LIMITED_KEY}", rate_limits: [exact]}')
        return "\n".join(lines) + "\n" + self.top


SPEND_LEDGER = "spend-bench-usage.db"  # in the router's working directory
SPEND = f"""budgets:
  daily: {{amount: 1000000, period: day, timezone: Europe/Paris}}
spend:
  ledger: {{url: "sqlite:///{SPEND_LEDGER}"}}
"""


def spend_config(port: int, upstream: int, spend: bool = True) -> str:
    """The usual config, or (`spend`) that one with a price for its upstream model, a money
    budget per day on its public model, far above what a run spends, and the usage ledger."""
    if not spend:
        return RouterConfig(port, upstream).text()
    return RouterConfig(
        port,
        upstream,
        provider={"prices": {"up-model": {"input": 2.5, "output": 10}}},
        model_settings={MODEL: {"budgets": ["daily"]}},
        top=SPEND,
    ).text()


@functools.cache
def server_settings() -> frozenset[str]:
    """The `server:` settings the installed router knows, from `llm-switchyard schema`."""
    done = subprocess.run([EXE, "schema", "--stdout"], capture_output=True, text=True, check=True)
    schema = json.loads(done.stdout)
    server = schema["properties"]["server"]
    if "$ref" in server:
        server = schema["$defs"][server["$ref"].rsplit("/", 1)[-1]]
    return frozenset(server.get("properties", {}))


def known(settings: dict[str, object]) -> dict[str, object]:
    """`settings` less those this router does not have (yet): a config with an unknown key is
    an error, and the harness must run against routers from before and after a setting."""
    names = server_settings()
    return {name: value for name, value in settings.items() if name in names}


def parse_settings(items: list[str]) -> dict[str, object]:
    """`KEY=VALUE` pairs from the command line; VALUE is read as JSON when it parses."""
    out: dict[str, object] = {}
    for item in items:
        name, _, raw = item.partition("=")
        try:
            out[name.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[name.strip()] = raw
    return out
