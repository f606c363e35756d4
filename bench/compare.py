"""The default scenario: the router beside direct calls, the bare relay and the peers, with the
same load generators in one run. See bench/README.md.

Installs what it lacks (wrk and nginx from Debian, LiteLLM proxy into its own venv, Portkey's
gateway with npm), starts the fake upstream on core 1, then measures each target in turn with
the proxy on core 0. A peer that fails a phase (start-up, requests, streams) gets a row that
says so; the run goes on.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench import measure, procfs, procs, report, targets


def ensure_tools(names: list[str], debian: tuple[str, ...] = ()) -> None:
    """Debian's wrk, nginx (and the `debian` packages a scenario needs, as `(package,
    program)` names joined by `:`), LiteLLM in its own venv and Portkey's gateway with the
    machine's npm, when missing."""
    wanted = [("wrk", "wrk"), ("nginx-light", "nginx")] if "nginx" in names else [("wrk", "wrk")]
    wanted += [tuple(item.split(":", 1)) for item in debian]  # type: ignore[misc]
    packages = [package for package, exe in wanted if not shutil.which(exe)]
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
    if "portkey" in names and targets.portkey_version() != targets.PORTKEY_VERSION:
        if not shutil.which("npm") or not shutil.which("node"):
            print("no node/npm on this machine: the Portkey row will say so", flush=True)
            return
        print(f"installing {targets.PORTKEY_PACKAGE}@{targets.PORTKEY_VERSION}", flush=True)
        targets.install_portkey()


def _failed(what: str, exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{what}: {type(exc).__name__}: {text[-1] if text else ''}"[:300]


def measure_target(name: str, upstream: int, upstream_pid: int, args: argparse.Namespace) -> dict:
    target = targets.build(name, procs.free_port(), upstream)
    log = targets.CACHE / f"{name}.log"
    print(f"== {target.label}", flush=True)
    out: dict = {
        "label": target.label,
        "startup_s": None,
        "rss_idle_mb": None,
        "cpu_is": "proxy" if target.command else "upstream",
        "runs": {"c1": [], "c32": [], "c64": [], "s1": [], "s16": []},
        "failures": [],
    }
    started = time.monotonic()
    process = target.start(log)
    try:
        ready = measure.first_200(
            target.port, target.key, target.model, started + 120, process, target.headers
        )
        if ready is None:
            out["failures"].append(f"start-up: never answered 200 (see bench/.cache/{log.name})")
            return out
        pid = process.pid if process else upstream_pid
        time.sleep(args.settle)
        out["startup_s"] = round(ready - started, 3) if process else None
        out["rss_idle_mb"] = round(procfs.rss_bytes(pid) / 2**20, 1)
        _phase(out, "requests", lambda: measure.wrk(target, pid, 32, args.warmup))
        _phase(out, "streams", lambda: measure.stream(target, pid, 16, min(args.warmup, 2)))
        for i in range(args.repeat):
            _repetition(out, target, pid, args, i + 1)
        return out
    finally:
        procs.stop(process)


def _repetition(
    out: dict, target: targets.Target, pid: int, args: argparse.Namespace, i: int
) -> None:
    for c in (1, 32, 64):
        run = _phase(out, "requests", lambda c=c: measure.wrk(target, pid, c, args.duration))
        if run is not None:
            out["runs"][f"c{c}"].append(run)
            print(f"  [{i}] c={c}: {run['rps']} req/s p50 {run['p50_ms']} ms", flush=True)
    for c in (1, 16):
        run = _phase(
            out, "streams", lambda c=c: measure.stream(target, pid, c, args.stream_duration)
        )
        if run is not None:
            out["runs"][f"s{c}"].append(run)
            print(
                f"  [{i}] stream c={c}: {run['streams_per_s']} streams/s"
                f" ttft p50 {run['ttft_p50_ms']} ms",
                flush=True,
            )


def _phase(out: dict, what: str, run):  # type: ignore[no-untyped-def]
    """One load run; a failure (it raised, or nothing at all succeeded) is recorded once per
    phase and the phase's later runs are skipped."""
    if any(f.startswith(what + ":") for f in out["failures"]):
        return None
    try:
        result = run()
    except Exception as exc:  # a peer that breaks must not end the run
        out["failures"].append(_failed(what, exc))
        return None
    done = result.get("streams", result.get("requests", 0))
    bad = result.get("errors_status", 0) if "requests" in result else result.get("errors", 0)
    if done == 0 or ("requests" in result and bad >= done):
        why = result.get("first_error") or f"{bad} errors, nothing succeeded"
        out["failures"].append(f"{what}: {why}"[:300])
        return None
    return result


def run(args: argparse.Namespace, argv: list[str]) -> int:
    if not args.no_install:
        ensure_tools(args.names)
    procs.pin_harness()
    targets.CACHE.mkdir(exist_ok=True)
    results: dict = {}
    with procs.upstream() as (port, upstream_pid):
        for name in args.names:
            results[name] = measure_target(name, port, upstream_pid, args)
    meta = {
        "command": "python -m bench " + " ".join(argv),
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
