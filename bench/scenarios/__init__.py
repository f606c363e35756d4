"""The scenarios that each grow one kind of work; `run_axes` runs them all in turn."""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path

from bench.scenario import Report

MODULES = {
    "streams": "bench.scenarios.streams",
    "big-config": "bench.scenarios.big_config",
    "big-bodies": "bench.scenarios.big_bodies",
    "long-streams": "bench.scenarios.long_streams",
    "workers": "bench.scenarios.workers",
    "spend": "bench.scenarios.spend",
}
AXES = tuple(name for name in MODULES if name != "spend")  # `spend` compares, on its own


def run(name: str, args: argparse.Namespace, argv: list[str]) -> Report:
    print(f"== scenario {name}", flush=True)
    module = importlib.import_module(MODULES[name])
    return module.run(args, argv)  # type: ignore[no-any-return]


def _argv_for(argv: list[str], name: str) -> list[str]:
    """The command line that runs `name` alone with the same options."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--scenario":
            skip = True
        elif not arg.startswith("--scenario="):
            out.append(arg)
    return ["--scenario", name, *out]


def run_axes(args: argparse.Namespace, argv: list[str], out: Path) -> int:
    """Every scenario once, each with its own report, and one line per axis together."""
    lines = [
        f"Command: `python -m bench {' '.join(argv)}`  ",
        f"When: {time.strftime('%F %T %Z')}",
        "",
    ]
    for name in AXES:
        sizes, args.sizes = args.sizes, None  # each scenario takes its own sizes
        report = run(name, args, _argv_for(argv, name))
        args.sizes = sizes
        print(report.write(out.with_name(f"{out.name}-{name}")))
        lines.append(f"- {report.line}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0
