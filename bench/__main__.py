"""`python -m bench`: the whole comparison in one run. See bench/README.md.

Installs what it lacks (wrk and nginx from Debian, LiteLLM proxy into its own venv), starts
the fake upstream on core 1, then measures each target in turn with the proxy on core 0.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench import measure, procfs, report, targets

RESULTS = Path(__file__).with_name("results")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_tools(names: list[str]) -> None:
    """Debian's wrk and nginx, and LiteLLM in its own venv, when missing."""
    packages = [p for p, exe in (("wrk", "wrk"), ("nginx-light", "nginx")) if not shutil.which(exe)]
    if "nginx" not in names and "nginx-light" in packages:
        packages.remove("nginx-light")
    if packages:
        print(f"installing {' '.join(packages)} with apt-get", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env)
    if "litellm" in names and not (targets.LITELLM_VENV / "bin" / "litellm").exists():
        print("installing LiteLLM proxy into bench/.cache/litellm-venv", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(targets.LITELLM_VENV)], check=True)
        pip = str(targets.LITELLM_VENV / "bin" / "pip")
        subprocess.run([pip, "install", "-q", "litellm[proxy]"], check=True)


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listening on port {port}")


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def measure_target(name: str, upstream: int, upstream_pid: int, args: argparse.Namespace) -> dict:
    target = targets.build(name, _free_port(), upstream)
    log = targets.CACHE / f"{name}.log"
    print(f"== {target.label}", flush=True)
    started = time.monotonic()
    process = target.start(log)
    try:
        ready = measure.first_200(target.port, target.key, target.model, started + 120, process)
        if ready is None:
            raise RuntimeError(f"{name} never answered 200; see {log}")
        pid = process.pid if process else upstream_pid
        time.sleep(args.settle)
        out: dict = {
            "label": target.label,
            "startup_s": round(ready - started, 3) if process else None,
            "rss_idle_mb": round(procfs.rss_bytes(pid) / 2**20, 1),
            "cpu_is": "proxy" if process else "upstream",
            "runs": {"c1": [], "c32": [], "c64": [], "s1": [], "s16": []},
        }
        measure.wrk(target, pid, 32, args.warmup)
        measure.stream(target, pid, 16, min(args.warmup, 2))
        for i in range(args.repeat):
            for c in (1, 32, 64):
                run = measure.wrk(target, pid, c, args.duration)
                out["runs"][f"c{c}"].append(run)
                print(f"  [{i + 1}] c={c}: {run['rps']} req/s p50 {run['p50_ms']} ms", flush=True)
            for c in (1, 16):
                run = measure.stream(target, pid, c, args.stream_duration)
                out["runs"][f"s{c}"].append(run)
                print(
                    f"  [{i + 1}] stream c={c}: {run['streams_per_s']} streams/s"
                    f" ttft p50 {run['ttft_p50_ms']} ms",
                    flush=True,
                )
        return out
    finally:
        _stop(process)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="seconds, not minutes")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(targets.ALL)}")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--stream-duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--settle", type=float, default=2.0, help="idle seconds before idle RSS")
    parser.add_argument("--out", default=str(RESULTS / "latest"), help="path without suffix")
    parser.add_argument("--no-install", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.duration, args.stream_duration = 1, 1.0, 1.0
        args.warmup, args.settle = 1.0, 0.3
    args.names = args.only.split(",") if args.only else list(targets.ALL)
    unknown = set(args.names) - set(targets.ALL)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.no_install:
        ensure_tools(args.names)
    os.sched_setaffinity(0, {1})  # the harness and everything it starts live on core 1...
    targets.CACHE.mkdir(exist_ok=True)
    port = _free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "bench.upstream", "--port", str(port)],
        cwd=targets.ROOT,
    )
    results: dict = {}
    try:
        _wait_port(port)
        for name in args.names:  # ...but each proxy, through `taskset -c 0`, on core 0
            results[name] = measure_target(name, port, upstream.pid, args)
    finally:
        _stop(upstream)
    meta = {
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "load_before": os.getloadavg(),
        "repeat": args.repeat,
        "duration_s": args.duration,
        "stream_duration_s": args.stream_duration,
    }
    summary = report.write(Path(args.out), meta, results)
    print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
