"""Spend: the router's CPU per request with a money budget and the usage ledger on, against
the same router without them.

Two configs, the same in everything else: the benchmark's usual one, and that one with a
price for its upstream model, a money budget per calendar day on the public model (far
above what a run spends, so nothing is refused: what is measured is the reservation, the
headers and the reconciliation of every request) and the usage ledger in a SQLite file.
Runs alternate between the two, `--repeat` times each, at c=64 for `--duration` seconds on
a fresh router each; the figure is the ratio of the medians of CPU per request (the
issue's bound: 1.10). `python -m bench.instructions --only router,router-spend` counts the
same two in instructions, which the machine's noise does not move.
"""

from __future__ import annotations

import argparse
import statistics

from bench import measure, procs
from bench.routerconf import SPEND_LEDGER, spend_config
from bench.scenario import Report, num, router
from bench.targets import CACHE

BOUND = 1.10
CONCURRENCY = 64


def _run(upstream: int, spend: bool, seconds: float, settle: float) -> dict:
    port = procs.free_port()
    (CACHE / SPEND_LEDGER).unlink(missing_ok=True)
    name = "spend-on" if spend else "spend-off"
    with router(name, spend_config(port, upstream, spend), port, settle=settle) as served:
        run = measure.wrk(served.target, served.pid, CONCURRENCY, seconds)
    return {"spend": "on" if spend else "off", **run}


def run(args: argparse.Namespace, argv: list[str]) -> Report:
    report = Report(
        "spend",
        f"Spend: a budget and the usage ledger on and off, c={CONCURRENCY}",
        argv,
        [
            ("budget and ledger", "spend", 0),
            ("requests", "requests", 0),
            ("errors", "errors", 0),
            ("requests/s", "rps", 0),
            ("p50 ms", "p50_ms", 2),
            ("CPU ms/request", "cpu_ms_per_request", 4),
        ],
    )
    with procs.upstream() as (upstream, _):
        for _ in range(args.repeat):
            for spend in (False, True):
                row = _run(upstream, spend, args.duration, args.settle)
                report.rows.append(row)
                print(f"  {row['spend']}: {row['cpu_ms_per_request']} ms/request", flush=True)
    medians = {}
    for side in ("off", "on"):
        values = [r["cpu_ms_per_request"] for r in report.rows if r["spend"] == side]
        values = [v for v in values if v is not None]
        medians[side] = statistics.median(values) if values else None
    off, on = medians["off"], medians["on"]
    ratio = round(on / off, 3) if on and off else None
    report.extra["medians"] = medians
    report.extra["ratio"] = ratio
    report.notes.append(
        f"Median CPU per request: {num(off, 4)} ms without, {num(on, 4)} ms with a budget and "
        f"the ledger; ratio {num(ratio, 3)} (bound {BOUND})."
    )
    within = "n/a" if ratio is None else ("yes" if ratio <= BOUND else "no")
    report.line = (
        f"spend: CPU per request with a budget and the ledger {num(ratio, 3)}x that "
        f"without (within {BOUND}x: {within})"
    )
    return report
