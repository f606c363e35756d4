"""Many open streams: 1,000, 5,000 and 10,000 streams held open by a slow upstream (one chunk
a second), and short requests meanwhile.

Per count, on a fresh router: the memory and file descriptors each open stream costs (RSS and
open descriptors with every stream open, less idle, per stream), the CPU per chunk relayed
while they stay open, and the p50 and p99 latency of short requests (one at a time) with the
streams open against the same router idle. The router's config raises the limits that would
otherwise cap the count: the held streams' provider's connection pool and, when the router
has it, `server.max_connections` (more with `--router-server`).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import resource
import subprocess
import sys
import time

import httpx

from bench import measure, procfs, procs, routerconf
from bench.pauses import Watch
from bench.routerconf import RouterConfig
from bench.scenario import Report, num, per, router, verdict, yes
from bench.targets import Target

FULL, QUICK = [1_000, 5_000, 10_000], [200, 1_000]
SLOW = "stream-3600-1000"  # one chunk a second, for an hour: longer than any window here
LATENCY_CONCURRENCY = 1
SLOW_MS = 5.0  # a short request slower than this is checked against the CPUs' pauses
MAX_POOL = 10_000  # the router's largest `providers.<name>.max_connections`


def config(port: int, upstream: int, count: int, extra: dict[str, object]) -> RouterConfig:
    """Held streams go through their own provider, whose pool holds one connection per
    stream (the router allows up to 10,000 a provider), and a model whose deadline outlasts
    the run (the default, 120 s, would end the first streams while the last still open);
    short requests go through `up`."""
    held = {"max_connections": min(count + 16, MAX_POOL), "timeouts": {"total": 7200, "idle": 60}}
    return RouterConfig(
        port,
        upstream,
        models={"bench": "up-model", "slow": f"held/{SLOW}"},
        server={**routerconf.known({"max_connections": count + 1024}), **extra},
        more_providers={"held": held},
        model_settings={"slow": {"retries": {"deadline": 7200}}},
        max_concurrent=1_000_000,
    )


_LAG_BUCKET = re.compile(r'^llm_router_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\d+)$', re.M)


def loop_lag(port: int) -> dict[float, int]:
    """The router's `llm_router_event_loop_lag_seconds` buckets: bound -> cumulative count."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    return {float(bound): int(count) for bound, count in _LAG_BUCKET.findall(text)}


def lag_quantile(before: dict[float, int], after: dict[float, int], q: float) -> float | None:
    """The bucket bound (ms) under which a fraction `q` of the timers that ran between two
    scrapes ran late: the router's own wait, apart from its upstream's and the machine's."""
    total = after.get(math.inf, 0) - before.get(math.inf, 0)
    if total <= 0:
        return None
    for bound in sorted(after):
        if after[bound] - before.get(bound, 0) >= q * total:
            return bound * 1000
    return None


class Holder:
    """The streaming client in `--hold` mode: opens the streams, reports on `mark`."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=procs.ROOT
        )

    def read(self) -> dict:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the stream client ended early")
        return json.loads(line)  # type: ignore[no-any-return]

    def say(self, command: str) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.read()

    def close(self) -> dict | None:
        try:
            return self.say("close") if self.process.poll() is None else None
        finally:
            procs.stop(self.process, timeout=30)


def short_requests(target: Target, seconds: float) -> dict:
    """Short requests one at a time for `seconds` (`bench.shortclient`), each request's own
    latency, with a watch for pauses of the CPUs meanwhile (`bench.pauses`)."""
    command = ["taskset", "-c", "1", sys.executable, "-m", "bench.shortclient"]
    command += ["--port", str(target.port), "--key", target.key, "--model", target.model]
    command += ["--seconds", str(seconds), "--slow", str(SLOW_MS)]
    with Watch() as watch:
        done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=procs.ROOT)
    figures = json.loads(done.stdout)
    slow = figures.pop("slow")
    return {**figures, **watch.summary(slow)}


def _measure(upstream: int, count: int, seconds: float, args: argparse.Namespace) -> dict:
    port = procs.free_port()
    extra = routerconf.parse_settings(args.router_server)
    text = config(port, upstream, count, extra).text()
    with router("streams", text, port, settle=args.settle) as served:
        pid, target = served.pid, served.target
        idle_rss, idle_fds = procfs.rss_bytes(pid), procfs.open_fds(pid)
        idle_threads = procfs.threads(pid)
        idle = short_requests(target, seconds)
        idle_wrk = measure.wrk(target, pid, LATENCY_CONCURRENCY, seconds)
        command = [*measure.stream_command(target, "slow"), "--hold", str(count)]
        command += ["--open-timeout", str(60 + count / 50)]
        holder = Holder(command)
        try:
            opened = holder.read()
            time.sleep(1.0)  # let the last streams' first chunks settle
            open_rss, open_fds = procfs.rss_bytes(pid), procfs.open_fds(pid)
            open_threads = procfs.threads(pid)
            cpu0, mark0 = procfs.cpu_seconds(pid), holder.say("mark")
            lag0 = loop_lag(port)
            time.sleep(seconds)
            cpu1, mark1 = procfs.cpu_seconds(pid), holder.say("mark")
            lag1 = loop_lag(port)
            with Watch() as wrk_watch:
                busy_wrk = measure.wrk(target, pid, LATENCY_CONCURRENCY, seconds)
            lag2 = loop_lag(port)
            busy = short_requests(target, seconds)
            # The same short requests straight to the upstream, which is serving the held
            # streams too, on the core it shares with the load generators: what of the
            # latency is the machine's and the upstream's, not the router's.
            alone = Target("direct", "direct to the upstream", upstream)
            direct = measure.wrk(alone, None, LATENCY_CONCURRENCY, seconds)
            still = holder.say("mark")
        finally:
            closed = holder.close()
    chunks = mark1["chunks"] - mark0["chunks"]
    return {
        "streams": count,
        "opened": opened["started"],
        "open_seconds": opened["seconds"],
        "errors": opened["errors"] + still["dropped"] + still["errors"],
        "first_error": still["first_error"],
        "still_open": still["open"],
        "chunks": chunks,
        "chunks_per_s": round(chunks / seconds, 1),
        "cpu_us_per_chunk": per(cpu1 - cpu0, chunks, 1e6),
        "cpu_share": round((cpu1 - cpu0) / seconds, 3),
        "idle_rss_mb": round(idle_rss / 2**20, 1),
        "open_rss_mb": round(open_rss / 2**20, 1),
        "kb_per_stream": round((open_rss - idle_rss) / 1024 / count, 2),
        "fds_per_stream": round((open_fds - idle_fds) / count, 3),
        "threads": f"{idle_threads} / {open_threads}",
        "idle_p50_ms": idle["p50_ms"],
        "idle_p99_ms": idle["p99_ms"],
        "busy_p50_ms": busy["p50_ms"],
        "busy_p99_ms": busy["p99_ms"],
        "wrk_idle_p99_ms": idle_wrk["p99_ms"],
        "wrk_busy_p99_ms": busy_wrk["p99_ms"],
        "wrk_p99_ratio": (
            per(busy_wrk["p99_ms"], idle_wrk["p99_ms"]) if busy_wrk["p99_ms"] else None
        ),
        "idle_pauses": idle["pauses"],
        "busy_pauses": busy["pauses"],
        "busy_longest_pause_ms": busy["longest_pause_ms"],
        "wrk_busy_pauses": len(wrk_watch.pauses),
        "wrk_busy_longest_pause_ms": wrk_watch.summary([])["longest_pause_ms"],
        "busy_slow": busy["slow"],
        "busy_slow_in_pauses": busy["slow_in_pauses"],
        "pauses_watched_realtime": idle["realtime"] and busy["realtime"],
        "direct_p99_ms": direct["p99_ms"],
        "lag_p99_ms": lag_quantile(lag0, lag1, 0.99),
        "lag_busy_p99_ms": lag_quantile(lag1, lag2, 0.99),
        "short_errors": idle["errors"] + busy["errors"] + idle_wrk["errors"] + busy_wrk["errors"],
        "p50_ratio": per(busy["p50_ms"], idle["p50_ms"]) if busy["p50_ms"] else None,
        "p99_ratio": per(busy["p99_ms"], idle["p99_ms"]) if busy["p99_ms"] else None,
        "closed": closed,
    }


def _counts(counts: list[int]) -> str:
    return ", ".join(f"{count:,}" for count in counts)


def run(args: argparse.Namespace, argv: list[str]) -> Report:
    sizes = args.sizes or (QUICK if args.quick else FULL)
    # a chunk a second: a shorter window counts too few chunks (but --quick only checks)
    seconds = args.duration if args.quick else max(args.duration, 3.0)
    report = Report(
        "streams",
        "Many open streams: a slow upstream (one chunk a second), short requests meanwhile",
        argv,
        [
            ("open streams", "streams", 0),
            ("errors", "errors", 0),
            ("short requests' errors", "short_errors", 0),
            ("s to open all", "open_seconds", 1),
            ("chunks/s", "chunks_per_s", 0),
            ("core share", "cpu_share", 2),
            ("CPU µs/chunk", "cpu_us_per_chunk", 1),
            ("RSS idle / open MB", "rss", 1),
            ("KB/open stream", "kb_per_stream", 1),
            ("fds/open stream", "fds_per_stream", 2),
            ("threads idle / open", "threads", 0),
            ("short p50 idle / open ms", "p50s", 2),
            ("short p99 idle / open ms", "p99s", 2),
            ("p50 / p99 ratio", "ratios", 2),
            ("wrk's p99 idle / open ms (ratio)", "wrk_p99s", 2),
            ("CPU pauses in wrk's open window (longest ms)", "wrk_pause_counts", 0),
            ("wrk's p99 to the upstream alone, open ms", "direct_p99_ms", 2),
            ("CPU pauses idle / open (longest ms)", "pause_counts", 0),
            ("short requests over 5 ms, open / in a pause", "slow_counts", 0),
            ("loop lag p99 open, alone / with short requests ms", "lags", 0),
        ],
    )
    with procs.upstream() as (upstream, _):
        for count in sizes:
            row = _measure(upstream, count, seconds, args)
            row["rss"] = f"{row['idle_rss_mb']} / {row['open_rss_mb']}"
            row["p50s"] = f"{num(row['idle_p50_ms'], 2)} / {num(row['busy_p50_ms'], 2)}"
            row["p99s"] = f"{num(row['idle_p99_ms'], 2)} / {num(row['busy_p99_ms'], 2)}"
            row["wrk_p99s"] = (
                f"{row['wrk_idle_p99_ms']:.2f} / {row['wrk_busy_p99_ms']:.2f}"
                f" ({num(row['wrk_p99_ratio'], 2)}x)"
            )
            row["pause_counts"] = (
                f"{row['idle_pauses']} / {row['busy_pauses']} ({row['busy_longest_pause_ms']})"
            )
            row["wrk_pause_counts"] = (
                f"{row['wrk_busy_pauses']} ({row['wrk_busy_longest_pause_ms']})"
            )
            row["slow_counts"] = f"{row['busy_slow']} / {row['busy_slow_in_pauses']}"
            row["lags"] = " / ".join(
                f"≤ {num(lag, 0)}" if lag is not None else "n/a"
                for lag in (row["lag_p99_ms"], row["lag_busy_p99_ms"])
            )
            row["ratios"] = " / ".join(
                f"{num(r, 2)}x" if r is not None else "n/a (none answered)"
                for r in (row["p50_ratio"], row["p99_ratio"])
            )
            report.rows.append(row)
            print(
                f"  {count:,} streams: {row['kb_per_stream']} KB and "
                f"{row['fds_per_stream']} fds each, {num(row['cpu_us_per_chunk'], 1)} µs/chunk,"
                f" p99 {row['p99s']} ms",
                flush=True,
            )
    report.verdicts = [
        verdict("memory per open stream", sizes, [r["kb_per_stream"] for r in report.rows], "KB"),
        verdict("CPU per chunk", sizes, [r["cpu_us_per_chunk"] for r in report.rows], "µs"),
        verdict(
            "descriptors per open stream", sizes, [r["fds_per_stream"] for r in report.rows], ""
        ),
    ]
    missed = [
        r["streams"]
        for r in report.rows
        if r["p50_ratio"] is None
        or r["p99_ratio"] is None
        or r["p50_ratio"] > 2
        or r["p99_ratio"] > 2
        or r["short_errors"]
    ]
    report.extra["latency_within_2x"] = not missed
    report.notes.append(
        f"Short requests one at a time, {seconds:g} s each, before the streams open and while "
        "they are open, each request's own latency (`bench/shortclient.py`); the issue's bound "
        "is 2x idle for p50 and p99, without errors: "
        + ("met at every count." if not missed else f"**not met** at {_counts(missed)} open.")
    )
    report.notes.append(
        "wrk's p99: the same short requests from wrk, in a window of their own. wrk corrects "
        "its latencies for coordinated omission: each request slower than twice the mean "
        "interval adds one made-up sample per mean interval it outlasted, as if requests had "
        "kept coming at the mean rate meanwhile, so one 30 ms stall among 0.7 ms requests "
        "counts as some 40 slow requests. The right figure for a client sending at a fixed "
        "rate; not what any request sent one at a time waited."
    )
    report.notes.append(
        "CPU pauses: spans of at least 4 ms in which a watcher at real-time priority on core 0 "
        "(the router's) or core 1 (the clients' and the upstream's) woke late "
        "(`bench/pauses.py`): no process could run on that core, the router or the clients "
        "included; a virtual machine's host holding its CPU. Counted during the short "
        "requests' windows, with the short requests slower than 5 ms that overlapped one."
    )
    report.notes.append(
        "Loop lag: how late the router ran a timer due every 0.1 s "
        "(`llm_router_event_loop_lag_seconds`, read from its `/metrics` around each window), "
        "the p99 as a bucket bound: what any request waited for the router's own process, "
        "apart from its upstream and the load generators."
    )
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 2 * sizes[-1] + 1024:
        report.notes.append(
            f"This machine allows {hard:,} descriptors a process, and each open stream takes "
            f"two of the router's (its client's connection and its upstream's): about "
            f"{(hard - 1024) // 2:,} streams can be held at once, and the streams past that "
            f"are refused (the errors at {sizes[-1]:,})."
        )
    mem, cpu, _ = report.verdicts
    last = report.rows[-1]
    report.line = (
        f"open streams ({sizes[0]:,} to {sizes[-1]:,}, a chunk a second): "
        f"{num(last['kb_per_stream'], 1)} KB and {num(last['fds_per_stream'], 1)} descriptors "
        f"an open stream (flat: {yes(mem)}), {num(last['cpu_us_per_chunk'], 1)} µs CPU "
        f"a chunk (flat: {yes(cpu)}); short requests' p50/p99 at {sizes[-1]:,} open: "
        f"{last['ratios']} idle (wrk's p99, corrected for coordinated omission: "
        f"{num(last['wrk_p99_ratio'], 2)}x; {last['busy_pauses']} CPU pauses "
        f"meanwhile, up to {last['busy_longest_pause_ms']} ms); the router's event loop late "
        f"{last['lags']} ms at p99 (streams alone / with short requests)"
    )
    return report
