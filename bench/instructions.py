"""CPU instructions per request, counted by callgrind: figures that do not move with the noise.

CPU time per request on a shared machine varies by 15% or more between identical runs, too
much to tell a 3% change. Callgrind counts the instructions the proxy executes, the same for
the same work whatever else the machine does. It runs the proxy about fifty times slower, so
this is not a throughput benchmark: it puts the usual load on the proxy under
`valgrind --tool=callgrind`, counts only while the measured load runs (the warm-up and the
start-up are not counted), and divides by the requests or streams completed.

Run: `python -m bench.instructions [--only router,relay] [--seconds 20] [--stream]`;
`--only router,router-responses,router-messages` compares the APIs the router translates
with chat completions; `--only router,router-spend` the router with a money budget and the
usage ledger on against the same without them; `--only router-big1,router-big` the big
config (1,000 models, 200 providers, 10,000 keys, half as digests; requests cycling over 200
keys and models) against the same config's smallest size (1 model, 1 provider, 10 keys).
Needs Debian's `valgrind` and `wrk` (it does not install them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench import bigconfig, measure, targets
from bench.procs import free_port as _free_port
from bench.procs import stop as _stop
from bench.procs import wait_port as _wait_port
from bench.routerconf import EXE, router_env

COUNTED = (
    "router",
    "relay",
    "router-responses",
    "router-messages",
    "router-spend",
    "router-big1",
    "router-big",
)


def _callgrind_total(files: list[Path]) -> int:
    """Instructions recorded in a run's dump files (only the counted window is non-zero)."""
    total = 0
    for path in files:
        lines = path.read_text(errors="replace").splitlines()
        figures = [line for line in lines if line.startswith("totals:")] or [
            line for line in lines if line.startswith("summary:")
        ]
        total += int(figures[-1].split()[1]) if figures else 0
    return total


def _big(name: str, port: int, upstream: int) -> tuple[targets.Target, Path]:
    """The big config's router (`router-big1`: its smallest size), and the file of the keys
    and models its requests cycle over."""
    size = bigconfig.Size.scaled(1 if name == "router-big1" else 1_000)
    config = targets.CACHE / f"{name}.yaml"
    config.write_text(bigconfig.text(port, upstream, size))
    command = [EXE, "serve", "--config", str(config)]
    env = {**router_env(), **bigconfig.key_env(size)}
    label = f"llm-switchyard, the big config at {size.label} models / providers / keys"
    target = targets.Target(name, label, port, command, env)
    return target, bigconfig.write_pairs(targets.CACHE / f"{name}-keys.txt", size)


def count(name: str, upstream: int, seconds: float, concurrency: int, stream: bool) -> dict:
    keys = None
    if name.startswith("router-big"):
        target, keys = _big(name, _free_port(), upstream)
    else:
        target = targets.build(name, _free_port(), upstream)
    out_dir = targets.CACHE / f"callgrind-{name}"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
    valgrind.append(f"--callgrind-out-file={out_dir}/callgrind.out.%p")
    with open(targets.CACHE / f"{name}-callgrind.log", "wb") as log:
        process = subprocess.Popen(
            ["taskset", "-c", "0", *valgrind, *target.command],
            env={**os.environ, **target.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=targets.CACHE,
        )
    try:
        _wait_port(target.port, timeout=900)  # start-up under valgrind takes a while
        if keys is None:
            ready = measure.first_200(target.port, target.key, target.model, time.monotonic() + 300)
            if ready is None:
                raise RuntimeError(f"{name} never answered 200 under valgrind")

        def load(target: targets.Target, pid: int, concurrency: int, seconds: float) -> dict:
            if stream:
                return measure.stream(target, pid, concurrency, seconds)
            return measure.wrk(target, pid, concurrency, seconds, keys=keys)

        load(target, process.pid, concurrency, 5)  # warm-up, not counted
        subprocess.run(["callgrind_control", "-i", "on", str(process.pid)], check=True)
        run = load(target, process.pid, concurrency, seconds)
        subprocess.run(["callgrind_control", "-i", "off", str(process.pid)], check=True)
        subprocess.run(["callgrind_control", "-d", str(process.pid)], check=True)
    finally:
        _stop(process)
    done = run["streams"] if stream else run["requests"]
    instructions = _callgrind_total(sorted(out_dir.glob("callgrind.out.*")))
    return {
        "label": target.label,
        "completed": done,
        "errors": run["errors"],
        "instructions_per_item": round(instructions / done) if done else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--only", default="router,relay", help=f"a subset of {','.join(COUNTED)}")
    parser.add_argument("--seconds", type=float, default=20.0, help="counted load, seconds")
    parser.add_argument("-c", "--concurrency", type=int, default=None)
    parser.add_argument("--stream", action="store_true", help="streams instead of requests")
    args = parser.parse_args(argv)
    names = args.only.split(",")
    if set(names) - set(COUNTED):
        parser.error(f"--only takes {', '.join(COUNTED)}")
    concurrency = args.concurrency or (16 if args.stream else 64)
    os.sched_setaffinity(0, {1})
    targets.CACHE.mkdir(exist_ok=True)
    port = _free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "bench.upstream", "--port", str(port)], cwd=targets.ROOT
    )
    results = {}
    try:
        _wait_port(port)
        for name in names:
            results[name] = count(name, port, args.seconds, concurrency, args.stream)
    finally:
        _stop(upstream)
    what = "stream" if args.stream else "request"
    print(f"\ninstructions per {what}, c={concurrency}, {args.seconds:g} s counted:")
    for result in results.values():
        millions = (result["instructions_per_item"] or 0) / 1e6
        print(
            f"  {result['label']}: {millions:.3f} M"
            f" ({result['completed']} {what}s, {result['errors']} errors)"
        )
    if "router-big1" in results and "router-big" in results:
        big, small = (results[n]["instructions_per_item"] for n in ("router-big", "router-big1"))
        print(f"  router-big / router-big1: {big / small:.2f}x" if big and small else "n/a")
    for name in ("relay", "router-responses", "router-messages", "router-spend"):
        if "router" in results and name in results:
            mine, base = (
                results[name]["instructions_per_item"],
                results["router"]["instructions_per_item"],
            )
            if name == "relay":
                mine, base = base, mine
            label = "router / relay" if name == "relay" else f"{name} / router"
            print(f"  {label}: {mine / base:.2f}x" if mine and base else f"  {label}: n/a")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
