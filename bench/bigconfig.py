"""A big config, made the same way every time: `models` public models over `providers`
providers, `keys` client keys (every other one given as its sha256 digest), and the list of
`key model` pairs that wrk cycles over so that a run spreads over the whole config. The keys
given as themselves are referenced, `${BENCH_KEY_00000}`, and set in the router's environment
(`key_env`), as a user would keep them out of the file.

Models `m0000...` have two targets each (a provider and the next one) and every tenth has a
fallback; keys `k00000...` may use every model (`"*"`, a quarter of them), or a list of four
models and a glob, as per-team keys would. Every provider points at the one fake upstream, so
requests succeed whichever target serves them. Written as text, not through a YAML library,
so that 10,000 keys take milliseconds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from bench.routerconf import CLIENT_KEY_LINE, MODEL

PAIRS = 200  # `key model` lines for wrk: enough to spread, few enough to pre-build


@dataclass(frozen=True)
class Size:
    models: int
    providers: int
    keys: int

    @classmethod
    def scaled(cls, models: int) -> Size:
        """The issue's proportions: 1,000 models, 200 providers, 10,000 keys."""
        return cls(models, max(1, models // 5), models * 10)

    @property
    def label(self) -> str:
        return f"{self.models:,} / {self.providers:,} / {self.keys:,}"

    @property
    def entries(self) -> int:
        return self.models + self.providers + self.keys


def client_key(i: int) -> str:
    return f"sk-bench-k{i:05d}"


def _model(i: int) -> str:
    return f"m{i:04d}"


def _allowed(i: int, size: Size) -> list[str]:
    if i % 4 == 0:
        return ["*"]
    picks = [_model((i * 7 + j * 13) % size.models) for j in range(4)]
    return [*sorted(set(picks)), f"m{i % 10}*"]


def text(port: int, upstream: int, size: Size) -> str:
    """The config, as YAML text."""
    lines = [
        "# a big config for the benchmark: see bench/bigconfig.py",
        "server:",
        "  host: 127.0.0.1",
        f"  port: {port}",
        "  auth: keys",
        '  admin_key: "${BENCH_ADMIN_KEY}"',
        "rate_limits:",
        "  per-app: {requests_per_minute: 100000000, max_concurrent: 1000000}",
        "providers:",
    ]
    for p in range(size.providers):
        lines += [
            f"  p{p:03d}:",
            "    plugin: openai",
            f"    base_url: http://127.0.0.1:{upstream}/v1",
            '    api_key: "${BENCH_UPSTREAM_KEY}"',
        ]
    lines += ["models:", f"  {MODEL}: {{targets: [{{provider: p000, model: up-model}}]}}"]
    for m in range(size.models):
        a, b = m % size.providers, (m + 1) % size.providers
        targets = (
            f"[{{provider: p{a:03d}, model: up-model}}, {{provider: p{b:03d}, model: up-model}}]"
        )
        fallback = (
            f", fallbacks: [{_model((m + 1) % size.models)}]"
            if m % 10 == 0 and size.models > 1
            else ""
        )
        lines.append(f"  {_model(m)}: {{targets: {targets}{fallback}}}")
    lines += ["keys:", CLIENT_KEY_LINE]
    for k in range(size.keys):
        key = client_key(k)
        digest = hashlib.sha256(key.encode()).hexdigest()
        secret = f"sha256: {digest}" if k % 2 else f'key: "${{{_env_name(k)}}}"'
        models = ", ".join(f'"{m}"' for m in _allowed(k, size))
        lines.append(f"  k{k:05d}: {{{secret}, models: [{models}], rate_limits: [per-app]}}")
    return "\n".join(lines) + "\n"


def _env_name(i: int) -> str:
    return f"BENCH_KEY_{i:05d}"


def key_env(size: Size) -> dict[str, str]:
    """The environment the referenced keys are read from."""
    return {_env_name(k): client_key(k) for k in range(0, size.keys, 2)}


def pairs(size: Size) -> list[tuple[str, str]]:
    """`PAIRS` (key, model) pairs spread evenly over the keys, each with a model the key may
    use; half the keys are the ones configured as digests."""
    out = []
    step = max(1, size.keys // PAIRS)
    for n, k in enumerate(range(0, size.keys, step)):
        for i in (k, k + 1):  # a plain key and the digest one after it
            if i >= size.keys:
                continue
            allowed = [m for m in _allowed(i, size) if "*" not in m]
            model = allowed[n % len(allowed)] if allowed else _model((i * 7) % size.models)
            out.append((client_key(i), model))
    return out[:PAIRS]


def write_pairs(path: Path, size: Size) -> Path:
    path.write_text("".join(f"{key} {model}\n" for key, model in pairs(size)))
    return path
