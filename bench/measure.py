"""One measurement each: a wrk run, a streaming run, start-up time. Load runs on core 1.

Each load run reads the proxy tree's CPU time and both cores' busy time before and after, so
CPU per request and the core shares cover exactly the measured window.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from pathlib import Path

from bench import procfs
from bench.targets import API_BODIES, CLIENT_KEY, Target

LUA = Path(__file__).with_name("post.lua")
PATH, _CHAT = API_BODIES["chat"]
BODY = json.dumps(_CHAT)


def _window(pid: int | None) -> tuple[float, list[tuple[int, int]]]:
    return (procfs.cpu_seconds(pid) if pid else 0.0), procfs.core_times()


def _close(pid: int | None, start: tuple[float, list[tuple[int, int]]], count: int) -> dict:
    cpu, cores = _window(pid)
    used = cpu - start[0]
    return {
        "proxy_cpu_s": round(used, 3),
        "cpu_ms_per_request": round(used * 1000 / count, 4) if pid and count else None,
        "core_busy": procfs.busy_shares(start[1], cores),
    }


def wrk_command(
    target: Target,
    concurrency: int,
    seconds: float,
    body: Path | None = None,
    keys: Path | None = None,
    cores: str = "1",
) -> list[str]:
    """wrk posting the target's API's requests (`API_BODIES`; chat: or the file `body`) with
    the target's key, or cycling
    over the `key model` lines of `keys`; the target's own headers on every request."""
    seconds = max(1, round(seconds))  # wrk takes whole seconds
    command = ["taskset", "-c", cores, "wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s"]
    command += ["--timeout", "10s", "-s", str(LUA), f"http://127.0.0.1:{target.port}"]
    path, fields = API_BODIES[target.api]
    payload = f"@{body}" if body else json.dumps({**fields, "model": target.model})
    command += ["--", path, f"@{keys}" if keys else target.key, payload]
    command += [f"{name}: {value}" for name, value in target.headers.items()]
    return command


def wrk_result(stdout: str, concurrency: int) -> dict:
    """wrk's JSON summary line, as figures."""
    line = next(x for x in stdout.splitlines() if x.startswith("BENCHJSON "))
    raw = json.loads(line.removeprefix("BENCHJSON "))
    requests = raw["requests"]
    return {
        "concurrency": concurrency,
        "requests": requests,
        "errors": sum(v for k, v in raw.items() if k.startswith("errors_")),
        "errors_status": raw["errors_status"],
        "rps": round(requests / (raw["duration_us"] / 1e6), 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
    }


def wrk(
    target: Target,
    pid: int | None,
    concurrency: int,
    seconds: float,
    body: Path | None = None,
    keys: Path | None = None,
    cores: str = "1",
) -> dict:
    """Non-streaming load at `concurrency` for `seconds`."""
    command = wrk_command(target, concurrency, seconds, body, keys, cores)
    start = _window(pid)
    with procfs.Sampler(pid or 0) as sampler:
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    result = wrk_result(done.stdout, concurrency)
    return {
        **result,
        "rss_peak_mb": round(sampler.peak / 2**20, 1) if pid else None,
        **_close(pid, start, result["requests"]),
    }


def stream_command(target: Target, model: str | None = None, cores: str = "1") -> list[str]:
    """The streaming client for `target` (its key and headers), less its load options."""
    command = ["taskset", "-c", cores, sys.executable, "-m", "bench.streamclient"]
    command += ["--port", str(target.port), "--key", target.key]
    command += ["--model", model or target.model, "--api", target.api]
    for name, value in target.headers.items():
        command += ["--header", f"{name}={value}"]
    return command


def stream(
    target: Target,
    pid: int | None,
    concurrency: int,
    seconds: float,
    model: str | None = None,
    cores: str = "1",
) -> dict:
    """Streaming load at `concurrency` for `seconds`, with the streaming client on core 1."""
    command = stream_command(target, model, cores)
    command += ["-c", str(concurrency), "-d", str(seconds)]
    start = _window(pid)
    done = subprocess.run(
        command, capture_output=True, text=True, check=True, cwd=LUA.parent.parent
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, **_close(pid, start, result["streams"])}


def first_200(  # type: ignore[no-untyped-def]
    port: int,
    key: str,
    model: str,
    deadline: float,
    process=None,
    extra: dict[str, str] | None = None,
) -> float | None:
    """Poll with a real chat request until it answers 200; the monotonic time it did."""
    body = BODY.replace("bench", model, 1)
    headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
    headers.update(extra or {})
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return None
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("POST", PATH, body, headers)
            status = conn.getresponse().status
            conn.close()
            if status == 200:
                return time.monotonic()
        except OSError:
            pass
        time.sleep(0.01)
    return None


__all__ = ["CLIENT_KEY", "first_200", "stream", "wrk"]
