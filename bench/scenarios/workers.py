"""More cores: `llm-switchyard serve --workers N` sharing its rate limits through Redis.

For 1 and 2 workers: requests/s at c=64, the router's CPU per request (all its processes), and
what each request costs Redis, read from a Redis server of the benchmark's own (so that no one
else's commands count): scripts and commands (`INFO commandstats`, where the commands a script
runs count too), round trips (`total_reads_processed`: one per request or pipeline Redis
reads) and Redis CPU (`used_cpu_user + used_cpu_sys`), each over the run divided by the
requests. Then that the limits are exact across workers: a key
allowed LIMIT requests a minute gets exactly LIMIT 200s out of many more tries.

One worker runs on core 0 with wrk, the upstream and Redis on core 1; two workers need both
cores, so then the load generator shares them (it cannot be pinned apart on two cores). The
per-core figures (requests per CPU second of the router, and of Redis) give the projection for
N workers and R replicas: throughput grows with N x R until Redis's one core is busy.
"""

from __future__ import annotations

import argparse
import subprocess

from bench import measure, procs
from bench.routerconf import LIMITED_KEY, RouterConfig
from bench.scenario import Report, num, per, router
from bench.targets import CACHE

FULL = QUICK = [1, 2]
LIMIT = 100  # requests a minute for the `limited` key


class Redis:
    """A private redis-server on a free port, no persistence, on the harness's core."""

    def __init__(self) -> None:
        self.port = procs.free_port()
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(CACHE)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        procs.wait_port(self.port)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cli(self, *args: str) -> str:
        command = ["redis-cli", "-p", str(self.port), *args]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout

    def stats(self) -> dict[str, float]:
        """Scripts run, commands (but INFO; those a script runs count too), reads and CPU
        seconds so far."""
        out = {"scripts": 0.0, "commands": 0.0, "reads": 0.0, "cpu_s": 0.0}
        for line in self.cli("INFO", "all").splitlines():
            name, _, value = line.strip().partition(":")
            if name.startswith("cmdstat_") and name != "cmdstat_info":
                calls = float(value.split(",")[0].removeprefix("calls="))
                out["commands"] += calls
                if name in ("cmdstat_evalsha", "cmdstat_eval", "cmdstat_fcall"):
                    out["scripts"] += calls
            elif name == "total_reads_processed":
                out["reads"] = float(value)
            elif name in ("used_cpu_user", "used_cpu_sys"):
                out["cpu_s"] += float(value)
        return out

    def stop(self) -> None:
        procs.stop(self.process)


def _exact(served_target, pid: int, seconds: float) -> dict:  # type: ignore[no-untyped-def]
    keys = CACHE / "workers-limited.txt"
    keys.write_text(f"{LIMITED_KEY} bench\n")
    run = measure.wrk(served_target, pid, 8, seconds, keys=keys)
    return {"tries": run["requests"], "admitted": run["requests"] - run["errors_status"]}


def _measure(upstream: int, redis: Redis, workers: int, args: argparse.Namespace) -> dict:
    redis.cli("FLUSHALL")
    port = procs.free_port()
    config = RouterConfig(port, upstream, backend_url=redis.url, limited=LIMIT)
    cores = "0" if workers == 1 else "0,1"
    with router(f"workers-{workers}", config.text(), port, cores=cores, workers=workers,
                settle=max(args.settle, 1.0)) as served:  # fmt: skip
        pid, target = served.pid, served.target
        measure.wrk(target, pid, 64, min(args.duration, 2))  # warm-up: every worker's pools
        before = redis.stats()
        run = measure.wrk(target, pid, 64, args.duration)
        after = redis.stats()
        exact = _exact(target, pid, 1)
    requests = run["requests"]
    return {
        "workers": workers,
        "cores": cores,
        "rps": run["rps"],
        "p50_ms": run["p50_ms"],
        "p99_ms": run["p99_ms"],
        "errors": run["errors"],
        "cpu_ms_per_request": run["cpu_ms_per_request"],
        "core_busy": " / ".join(f"{x:.2f}" for x in run["core_busy"]),
        "redis_scripts_per_request": per(after["scripts"] - before["scripts"], requests),
        "redis_commands_per_request": per(after["commands"] - before["commands"], requests),
        "redis_round_trips_per_request": per(after["reads"] - before["reads"], requests),
        "redis_cpu_us_per_request": per(after["cpu_s"] - before["cpu_s"], requests, 1e6),
        "limit": LIMIT,
        "limit_tries": exact["tries"],
        "limit_admitted": exact["admitted"],
        "limit_exact": exact["admitted"] == LIMIT,
    }


def projection(rows: list[dict]) -> list[str]:
    """What N workers and R replicas sharing one Redis will do, from the per-core figures."""
    one = rows[0]
    router_ms, redis_us = one["cpu_ms_per_request"], one["redis_cpu_us_per_request"]
    if not router_ms or not redis_us:
        return []
    per_core = 1000 / router_ms
    redis_max = 1e6 / redis_us
    cores = redis_max / per_core
    return [
        f"One router core serves about {per_core:,.0f} requests/s ({router_ms:.3f} ms CPU a "
        f"request); N workers on N free cores and R replicas serve about N x R x "
        f"{per_core:,.0f} requests/s, as long as Redis keeps up.",
        f"Each request costs Redis {num(one['redis_round_trips_per_request'], 2)} round trips "
        f"({num(one['redis_scripts_per_request'], 2)} scripts, "
        f"{num(one['redis_commands_per_request'], 2)} commands counting the scripts' own) and "
        f"{redis_us:.1f} µs of "
        f"its CPU: one Redis core is busy at about {redis_max:,.0f} requests/s, which is about "
        f"{cores:,.1f} router cores (N x R). Beyond that, Redis is the limit: add Redis "
        f"capacity (budgets split over several Redis instances) rather than routers.",
        "Each round trip also adds one Redis RTT to a request's latency (well under a "
        "millisecond on loopback; more across a network).",
    ]


def run(args: argparse.Namespace, argv: list[str]) -> Report:
    sizes = args.sizes or (QUICK if args.quick else FULL)
    report = Report(
        "workers",
        "More cores: --workers N, limits shared through Redis",
        argv,
        [
            ("workers", "workers", 0),
            ("router cores", "cores", 0),
            ("req/s c=64", "rps", 0),
            ("p50 / p99 ms", "latency", 1),
            ("errors", "errors", 0),
            ("router CPU ms/req", "cpu_ms_per_request", 3),
            ("core 0/1 busy", "core_busy", 2),
            ("Redis scripts/req", "redis_scripts_per_request", 2),
            ("Redis commands/req (scripts' own too)", "redis_commands_per_request", 2),
            ("Redis round trips/req", "redis_round_trips_per_request", 2),
            ("Redis CPU µs/req", "redis_cpu_us_per_request", 1),
            (f"limit {LIMIT}/min: admitted of tries", "exact", 0),
        ],
    )
    redis = Redis()
    try:
        with procs.upstream() as (upstream, _):
            for workers in sizes:
                row = _measure(upstream, redis, workers, args)
                row["latency"] = f"{row['p50_ms']:.1f} / {row['p99_ms']:.1f}"
                row["exact"] = f"{row['limit_admitted']} of {row['limit_tries']}"
                report.rows.append(row)
                print(
                    f"  {workers} worker(s): {row['rps']} req/s, "
                    f"{num(row['redis_round_trips_per_request'], 2)} Redis round trips a "
                    f"request, limit {row['exact']}",
                    flush=True,
                )
    finally:
        redis.stop()
    exact = all(r["limit_exact"] for r in report.rows)
    report.extra["limits_exact"] = exact
    report.notes += [
        f"Shared limits exact with every worker count: {'yes' if exact else '**no**'}.",
        *projection(report.rows),
    ]
    first, last = report.rows[0], report.rows[-1]
    speedup = per(last["rps"], first["rps"])
    report.line = (
        f"workers (1 to {last['workers']}, Redis limits): {num(first['rps'], 0)} to "
        f"{num(last['rps'], 0)} req/s ({num(speedup, 2)}x on this 2-core machine, load generator"
        f" included), {num(first['redis_round_trips_per_request'], 1)} Redis round trips and "
        f"{num(first['redis_cpu_us_per_request'], 0)} µs of Redis CPU a request, limits exact: "
        f"{'yes' if exact else 'no'}"
    )
    return report
