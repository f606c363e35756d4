"""Long streams: answers of 100, 1,000 and 10,000 chunks (1 ms apart), eight at a time.

Per length, on a fresh router: CPU per chunk, and the peak memory a stream holds (the
process's high-water mark over the run, less its idle RSS, per stream in flight). A stream
also has a fixed cost (the request, the response, the access log line), measured once with
2-chunk streams and taken off, so that the per-chunk figure is the cost of one more chunk;
memory must not grow with the length beyond the usage estimate a stream needs.
"""

from __future__ import annotations

import argparse

from bench import measure, procfs, procs
from bench.routerconf import RouterConfig
from bench.scenario import Report, num, per, router, verdict, yes

FULL, QUICK = [100, 1_000, 10_000], [10, 100, 1_000]
BASE = 2  # the shortest stream the upstream sends: its cost is the per-stream part
GAP_MS = 1
CONCURRENCY = 8


def _model(length: int) -> str:
    return f"long-{length}"


def _measure(upstream: int, length: int, seconds: float, settle: float) -> dict:
    port = procs.free_port()
    models = {_model(n): f"stream-{n}-{GAP_MS}" for n in (length,)}
    config = RouterConfig(port, upstream, models={"bench": "up-model", **models})
    with router("long-streams", config.text(), port, settle=settle) as served:
        idle = procfs.rss_bytes(served.pid)
        procfs.reset_peak_rss(served.pid)
        # at least two streams per connection, whatever the length
        duration = max(seconds, 2 * length * GAP_MS / 1000)
        run = measure.stream(served.target, served.pid, CONCURRENCY, duration, _model(length))
        peak = procfs.peak_rss_bytes(served.pid)
    streams = run["streams"]
    return {
        "length": length,
        "streams": streams,
        "chunks": run["chunks"],
        "errors": run["errors"],
        "first_error": run["first_error"],
        "cpu_s": run["proxy_cpu_s"],
        "cpu_ms_per_stream": per(run["proxy_cpu_s"], streams, 1000),
        "cpu_us_per_chunk": per(run["proxy_cpu_s"], run["chunks"], 1e6),
        "idle_rss_mb": round(idle / 2**20, 2),
        "peak_kb_per_stream": round((peak - idle) / 1024 / CONCURRENCY, 1),
        "total_p50_ms": run["total_p50_ms"],
    }


def run(args: argparse.Namespace, argv: list[str]) -> Report:
    sizes = args.sizes or (QUICK if args.quick else FULL)
    report = Report(
        "long-streams",
        f"Long streams: {CONCURRENCY} at a time, chunks {GAP_MS} ms apart",
        argv,
        [
            ("chunks a stream", "length", 0),
            ("streams", "streams", 0),
            ("errors", "errors", 0),
            ("CPU ms/stream", "cpu_ms_per_stream", 3),
            ("CPU µs/chunk", "cpu_us_per_chunk", 2),
            ("CPU µs/chunk beyond the stream's own", "marginal_us_per_chunk", 2),
            ("peak KB/stream in flight", "peak_kb_per_stream", 1),
            ("stream p50 ms", "total_p50_ms", 1),
        ],
    )
    with procs.upstream() as (upstream, _):
        base = _measure(upstream, BASE, args.duration, args.settle)
        print(f"  {BASE} chunks: {base['cpu_ms_per_stream']} ms/stream", flush=True)
        for length in sizes:
            row = _measure(upstream, length, args.duration, args.settle)
            fixed = base["cpu_ms_per_stream"]
            if row["cpu_ms_per_stream"] is not None and fixed is not None:
                beyond = (row["cpu_ms_per_stream"] - fixed) * 1000 / (length - BASE)
                row["marginal_us_per_chunk"] = round(beyond, 3)
            report.rows.append(row)
            print(f"  {length} chunks: {row['cpu_us_per_chunk']} µs/chunk", flush=True)
    report.extra["base"] = base
    report.verdicts = [
        verdict(
            "CPU per chunk beyond the stream's own",
            sizes,
            [r.get("marginal_us_per_chunk") for r in report.rows],
            "µs",
        ),
        verdict(
            "peak memory per stream", sizes, [r["peak_kb_per_stream"] for r in report.rows], "KB"
        ),
    ]
    first, last = report.rows[0], report.rows[-1]
    growth = per(
        (last["peak_kb_per_stream"] - first["peak_kb_per_stream"]) * 1024,
        last["length"] - first["length"],
    )
    report.extra["memory_growth_bytes_per_chunk"] = growth
    report.notes += [
        f"The per-stream part ({BASE}-chunk streams, back to back): "
        f"{num(base['cpu_ms_per_stream'], 3)} ms CPU a stream.",
        f"Memory growth with the length: {num(growth, 1)} bytes a chunk per stream, from "
        f"{first['length']:,} to {last['length']:,} chunks (the idle RSS was "
        f"{first['idle_rss_mb']} MB).",
    ]
    cpu, mem = report.verdicts
    report.line = (
        f"long streams ({sizes[0]:,} to {sizes[-1]:,} chunks): "
        f"{num(last.get('marginal_us_per_chunk'), 1)} µs CPU a chunk at {sizes[-1]:,} "
        f"(max/min over lengths {num(cpu['max_over_min'], 2)}, flat: {yes(cpu)}); "
        f"peak memory a stream {num(first['peak_kb_per_stream'], 0)} to "
        f"{num(last['peak_kb_per_stream'], 0)} KB (flat: {yes(mem)})"
    )
    return report
