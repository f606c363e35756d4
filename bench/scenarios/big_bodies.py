"""Big bodies: prompts of 100 KB, 1 MB and 4 MB, one request at a time.

Per size, on a fresh router: CPU per MB of request body, and the peak memory a request
takes, as MB and as a multiple of the body's size (how many copies of it the router holds at
once: reading it, parsing it, sending it on). The fixed cost of a request (measured with the
usual small body) is taken off the CPU, so that the per-MB figure is the cost of the bytes.
Peak memory is the process's high-water mark (`VmHWM`, reset before each size), exact where
sampling would miss a request's peak. The page faults and the kernel's CPU per request show
memory mapped afresh for each request (a parser's work area beyond malloc's heap).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench import measure, procfs, procs
from bench.routerconf import MODEL, RouterConfig
from bench.scenario import Report, num, per, router, verdict, yes
from bench.targets import CACHE

FULL = QUICK = [100_000, 1_000_000, 4_000_000]  # bytes of prompt text
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india")


def prompt(size: int) -> str:
    """`size` characters of plain words, the same for the same size."""
    words, length, i = [], 0, 0
    while length < size:
        word = f"{WORDS[i % len(WORDS)]}{i % 997} "
        words.append(word)
        length += len(word)
        i += 1
    return "".join(words)[:size]


def body_file(size: int) -> Path:
    path = CACHE / f"body-{size}.json"
    if not path.exists():
        body = {"model": MODEL, "messages": [{"role": "user", "content": prompt(size)}]}
        path.write_text(json.dumps(body))
    return path


def _measure(upstream: int, size: int | None, seconds: float, settle: float) -> dict:
    port = procs.free_port()
    body = body_file(size) if size else None
    length = body.stat().st_size if body else len(measure.BODY)
    limit = max(4 * 2**20, 2 * length)  # the default, or room for the largest body
    config = RouterConfig(port, upstream, server={"max_body_bytes": limit})
    with router("big-bodies", config.text(), port, settle=settle) as served:
        idle = procfs.rss_bytes(served.pid)
        procfs.reset_peak_rss(served.pid)
        faults, kernel = procfs.minor_faults(served.pid), procfs.system_seconds(served.pid)
        run = measure.wrk(served.target, served.pid, 1, seconds, body=body)
        faults = procfs.minor_faults(served.pid) - faults
        kernel = procfs.system_seconds(served.pid) - kernel
        peak = procfs.peak_rss_bytes(served.pid)
    extra = peak - idle
    done = run["requests"] or None
    return {
        "size": size or 0,
        "body_bytes": length,
        "requests": run["requests"],
        "errors": run["errors"],
        "rps": run["rps"],
        "p50_ms": run["p50_ms"],
        "cpu_ms_per_request": run["cpu_ms_per_request"],
        "cpu_ms_per_mb": per(run["cpu_ms_per_request"], length / 1e6),
        "kernel_ms_per_request": per(kernel * 1000, done),
        "faults_per_request": per(faults, done),
        "idle_rss_mb": round(idle / 2**20, 2),
        "peak_extra_mb": round(extra / 2**20, 2),
        "copies": round(extra / length, 2),
    }


def run(args: argparse.Namespace, argv: list[str]) -> Report:
    sizes = args.sizes or (QUICK if args.quick else FULL)
    report = Report(
        "big-bodies",
        "Big bodies: one request at a time, prompts of growing size",
        argv,
        [
            ("prompt bytes", "size", 0),
            ("body bytes", "body_bytes", 0),
            ("requests", "requests", 0),
            ("errors", "errors", 0),
            ("p50 ms", "p50_ms", 2),
            ("CPU ms/request", "cpu_ms_per_request", 3),
            ("CPU ms/MB", "cpu_ms_per_mb", 2),
            ("CPU ms/MB beyond the request's own", "marginal_ms_per_mb", 2),
            ("kernel CPU ms/request", "kernel_ms_per_request", 3),
            ("page faults/request", "faults_per_request", 0),
            ("peak memory over idle MB", "peak_extra_mb", 2),
            ("peak / body size", "copies", 2),
        ],
    )
    with procs.upstream() as (upstream, _):
        base = _measure(upstream, None, args.duration, args.settle)
        print(f"  small body: {base['cpu_ms_per_request']} ms/request", flush=True)
        for size in sizes:
            row = _measure(upstream, size, args.duration, args.settle)
            fixed, own = base["cpu_ms_per_request"], row["cpu_ms_per_request"]
            if fixed is not None and own is not None:
                row["marginal_ms_per_mb"] = round((own - fixed) / (row["body_bytes"] / 1e6), 3)
            report.rows.append(row)
            print(f"  {size:,} bytes: {row['cpu_ms_per_mb']} ms/MB, {row['copies']}x", flush=True)
    report.extra["base"] = base
    report.verdicts = [
        verdict(
            "CPU per MB beyond the request's own",
            sizes,
            [r.get("marginal_ms_per_mb") for r in report.rows],
            "ms",
        ),
        verdict("peak memory per body byte", sizes, [r["copies"] for r in report.rows], "x"),
    ]
    report.notes.append(
        f"The request's own part (the usual {base['body_bytes']}-byte body): "
        f"{num(base['cpu_ms_per_request'], 3)} ms CPU a request."
    )
    cpu, mem = report.verdicts
    last = report.rows[-1]
    report.line = (
        f"big bodies ({sizes[0] / 1e6:g} to {sizes[-1] / 1e6:g} MB): "
        f"{num(last.get('marginal_ms_per_mb'), 2)} ms CPU a MB at {sizes[-1] / 1e6:g} MB "
        f"(max/min {num(cpu['max_over_min'], 2)}, flat: {yes(cpu)}); peak memory "
        f"{num(last['copies'], 1)}x the body (flat: {yes(mem)}); "
        f"{num(last.get('faults_per_request'), 0)} page faults a request at "
        f"{sizes[-1] / 1e6:g} MB"
    )
    return report
