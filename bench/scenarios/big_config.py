"""Big configs: from the usual one model, one provider and one key up to 1,000 models, 200
providers and 10,000 client keys (half of them as sha256 digests).

Per size: the wall time of `llm-switchyard check` (load, validate and compile, plus the CLI's own
start-up, which the smallest size shows; the quickest of five runs, the one the machine
disturbed least: the middle size adds a tenth of a second to the start-up, less than the
spread between runs), the served router's start-up and idle RSS, its CPU
per request at c=64 with wrk cycling over 200 keys and models spread through the config (the
figure that must not grow: authentication and allow-lists cost the same with 1 key or
10,000), and reloads under load: `POST /admin/reload` back to back while wrk runs at c=16,
each reload's time, and the p99 of the requests meanwhile against a run without reloads. The
loaded run lasts at least three reloads (as long as one reload without load, times three),
so that its p99 is the p99 during reloads. Before it, three reloads without load, back to
back: the median of their times and of the CPU the router spent on each. A reload is paced
to a tenth of the core, so its time is about ten times its CPU; one reload's time moves by
15% between identical reloads, which a single one made look like growth.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import threading
import time

from bench import bigconfig, measure, procfs, procs
from bench.bigconfig import Size
from bench.routerconf import ADMIN_KEY, EXE, router_env
from bench.scenario import Report, num, per, router, rss_mb, verdict, yes
from bench.targets import CACHE

FULL, QUICK = [1, 100, 1_000], [1, 10, 100]  # models; providers and keys in proportion
RELOAD_CONCURRENCY = 16
START_TIMEOUT = 900  # seconds: a config that takes minutes to compile is a finding, not a hang
MAX_RELOAD_WINDOW = 300  # seconds of load while reloading: three reloads' time, at most this
IDLE_RELOADS = 3  # reloads without load, measured one after the other: their median counts


def _check_seconds(path: str, env: dict[str, str], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run(
            ["taskset", "-c", "0", EXE, "check", path], env=env, capture_output=True, text=True
        )
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(f"llm-switchyard check {path} failed:\n{done.stderr[-2000:]}")
    return times


class Reloader(threading.Thread):
    """`POST /admin/reload`, again and again until stopped: each one's time and status."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.times: list[float] = []
        self.statuses: list[int] = []
        self.halt = threading.Event()

    def run(self) -> None:
        headers = {"authorization": f"Bearer {ADMIN_KEY}"}
        while True:
            started = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=900)
                conn.request("POST", "/admin/reload", b"", headers)
                response = conn.getresponse()
                response.read()
                conn.close()
                self.statuses.append(response.status)
            except OSError:
                self.statuses.append(0)
            self.times.append(time.perf_counter() - started)
            if self.halt.is_set():
                return


def _measure(upstream: int, size: Size, args: argparse.Namespace) -> dict:
    port = procs.free_port()
    name = f"big-config-{size.models}"
    started = time.perf_counter()
    text = bigconfig.text(port, upstream, size)
    generated = time.perf_counter() - started
    path = CACHE / f"{name}.yaml"
    path.write_text(text)
    pairs = bigconfig.write_pairs(CACHE / f"{name}-keys.txt", size)
    key_env = bigconfig.key_env(size)
    env = {**os.environ, **router_env(), **key_env}
    checks = _check_seconds(str(path), env, 1 if args.quick else 5)
    seconds = args.duration
    with router(name, text, port, env=key_env, timeout=START_TIMEOUT, settle=args.settle) as served:
        pid, target = served.pid, served.target
        idle = rss_mb(pid)
        measure.wrk(target, pid, 64, min(seconds, 2), keys=pairs)  # warm-up
        load = measure.wrk(target, pid, 64, seconds, keys=pairs)
        calm = measure.wrk(target, pid, RELOAD_CONCURRENCY, seconds, keys=pairs)
        idle_times, idle_cpu = [], []
        for _ in range(IDLE_RELOADS):  # without load: how long the loaded run must be
            first = Reloader(port)
            first.halt.set()
            before = procfs.cpu_seconds(pid)
            first.run()
            idle_cpu.append(procfs.cpu_seconds(pid) - before)
            idle_times += first.times
        reload_idle = statistics.median(idle_times)
        window = max(seconds, min(3 * reload_idle + 1, MAX_RELOAD_WINDOW))
        reloader = Reloader(port)
        reloader.start()
        busy = measure.wrk(target, pid, RELOAD_CONCURRENCY, window, keys=pairs)
        reloader.halt.set()
        reloader.join(START_TIMEOUT)
        after = rss_mb(pid)
    reloads = reloader.times
    return {
        "size": size.label,
        "models": size.models,
        "entries": size.entries,
        "config_kb": round(len(text) / 1024, 1),
        "generate_s": round(generated, 3),
        "check_s": round(min(checks), 3),
        "startup_s": served.startup_s,
        "idle_rss_mb": idle,
        "rss_after_mb": after,
        "rps_c64": load["rps"],
        "errors": load["errors"] + calm["errors"] + busy["errors"],
        "cpu_ms_per_request": load["cpu_ms_per_request"],
        "p99_calm_ms": calm["p99_ms"],
        "p99_reloading_ms": busy["p99_ms"],
        "p99_ratio": per(busy["p99_ms"], calm["p99_ms"]),
        "reloads": len(reloads),
        "reload_failures": sum(1 for s in reloader.statuses if s != 200),
        "reload_idle_s": round(reload_idle, 3),
        "reload_idle_spread": per(max(idle_times), min(idle_times)),
        "reload_cpu_s": round(statistics.median(idle_cpu), 3),
        "reload_s": round(statistics.median(reloads), 3) if reloads else None,
        "reload_max_s": round(max(reloads), 3) if reloads else None,
    }


def run(args: argparse.Namespace, argv: list[str]) -> Report:
    sizes = [Size.scaled(m) for m in (args.sizes or (QUICK if args.quick else FULL))]
    report = Report(
        "big-config",
        "Big configs: models / providers / client keys (half as sha256 digests)",
        argv,
        [
            ("models / providers / keys", "size", 0),
            ("config KB", "config_kb", 1),
            ("`check` s", "check_s", 2),
            ("start-up s", "startup_s", 2),
            ("idle RSS MB", "idle_rss_mb", 1),
            ("req/s c=64", "rps_c64", 0),
            ("CPU ms/req c=64", "cpu_ms_per_request", 3),
            ("errors", "errors", 0),
            ("`check` ms per 1,000 entries", "check_ms_per_1000", 0),
            ("RSS KB per 1,000 entries", "rss_kb_per_1000", 0),
            ("idle reload s / CPU s (max/min)", "idle_reload", 0),
            ("reload CPU ms per 1,000 entries", "reload_cpu_ms_per_1000", 0),
            ("reloads (failed)", "reload_cell", 0),
            ("reload s (max)", "reload_time", 2),
            (f"p99 c={RELOAD_CONCURRENCY} ms, calm / reloading", "p99s", 1),
            ("p99 ratio", "p99_ratio", 2),
        ],
    )
    with procs.upstream() as (upstream, _):
        for size in sizes:
            print(f"  {size.label}: generating and checking", flush=True)
            row = _measure(upstream, size, args)
            row["reload_cell"] = f"{row['reloads']} ({row['reload_failures']})"
            row["idle_reload"] = (
                f"{num(row['reload_idle_s'], 2)} / {num(row['reload_cpu_s'], 2)} "
                f"({num(row['reload_idle_spread'], 2)})"
            )
            row["reload_time"] = f"{num(row['reload_s'], 2)} ({num(row['reload_max_s'], 2)})"
            row["p99s"] = f"{row['p99_calm_ms']:.1f} / {row['p99_reloading_ms']:.1f}"
            report.rows.append(row)
            print(
                f"  {size.label}: check {row['check_s']} s, {row['cpu_ms_per_request']} ms/req,"
                f" reload {row['reload_s']} s, p99 {row['p99s']} ms",
                flush=True,
            )
    first, last = report.rows[0], report.rows[-1]
    for row in report.rows[1:]:  # what each 1,000 entries beyond the smallest config cost
        grow = row["entries"] - first["entries"]
        row["check_ms_per_1000"] = per((row["check_s"] - first["check_s"]) * 1000, grow, 1000)
        row["reload_ms_per_1000"] = per(
            ((row["reload_idle_s"] or 0) - (first["reload_idle_s"] or 0)) * 1000, grow, 1000
        )
        row["reload_cpu_ms_per_1000"] = per(
            ((row["reload_cpu_s"] or 0) - (first["reload_cpu_s"] or 0)) * 1000, grow, 1000
        )
        row["rss_kb_per_1000"] = per((row["idle_rss_mb"] - first["idle_rss_mb"]) * 1024, grow, 1000)
    labels = [s.label for s in sizes]
    grown = report.rows[1:]
    report.verdicts = [
        verdict("CPU per request", labels, [r["cpu_ms_per_request"] for r in report.rows], "ms"),
        verdict(
            "`check` time per 1,000 entries",
            labels[1:],
            [r["check_ms_per_1000"] for r in grown],
            "ms",
        ),
        verdict(
            "reload time per 1,000 entries",
            labels[1:],
            [r["reload_ms_per_1000"] for r in grown],
            "ms",
        ),
        verdict(
            "reload CPU per 1,000 entries",
            labels[1:],
            [r["reload_cpu_ms_per_1000"] for r in grown],
            "ms",
        ),
        verdict("RSS per 1,000 entries", labels[1:], [r["rss_kb_per_1000"] for r in grown], "KB"),
    ]
    p99_ok = all(r["p99_ratio"] is not None and r["p99_ratio"] <= 2 for r in report.rows)
    report.notes += [
        "Entries are models + providers + keys. Loading a config, reloading it and holding it "
        "must grow with it, but linearly: the time and memory per 1,000 entries beyond the "
        "smallest config are flat when they do.",
        f"p99 while reloading within 2x of the p99 without: {'yes' if p99_ok else '**no**'}.",
    ]
    cpu = report.verdicts[0]
    check, reload, reload_cpu, rss = (yes(v) for v in report.verdicts[1:])
    report.line = (
        f"big config ({first['size']} to {last['size']} models / providers / keys): "
        f"{num(last['cpu_ms_per_request'], 3)} ms CPU a request against "
        f"{num(first['cpu_ms_per_request'], 3)} (max/min {num(cpu['max_over_min'], 2)}, flat: "
        f"{yes(cpu)}); `check` {num(last['check_s'], 1)} s, reload "
        f"{num(last['reload_s'], 2)} s, idle RSS {num(last['idle_rss_mb'], 0)} MB (flat per "
        f"1,000 entries: `check` {check}, reload {reload} (its CPU {reload_cpu}), RSS {rss}); "
        "p99 while reloading "
        f"{num(last['p99_ratio'], 1)}x calm"
    )
    return report
