"""What every scenario shares: a router started for one size, the flatness verdict, and the
report (JSON with every raw figure, Markdown with one row per size and the verdicts).

A scenario measures one axis of work (open streams, config size, body size, stream length,
workers) at several sizes and reports the cost per unit of work at each, so that flatness can
be read off: "flat" means the largest per-unit figure is within 10% of the smallest. A figure
that is not flat says which way it goes: one that falls as the work grows (a fixed cost
shared by more work) is not a cost that grows with it; one that grows is the defect sought.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import measure, procfs, procs
from bench.routerconf import CLIENT_KEY, EXE, MODEL, router_env
from bench.targets import CACHE, Target

RESULTS = Path(__file__).with_name("results")
FLAT = 1.10  # the "flat within 10%"


@dataclass
class Router:
    """A running `llm-switchyard serve`: its process, the Target that loads it, its start-up."""

    process: subprocess.Popen[bytes]
    target: Target
    startup_s: float
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def router(
    name: str,
    config: str,
    port: int,
    model: str = MODEL,
    cores: str = "0",
    workers: int = 1,
    settle: float = 0.5,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> Iterator[Router]:
    """`llm-switchyard serve` with `config` (text), pinned to `cores`, once it answers a real chat
    request with 200; stopped however the block ends."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"{name}.yaml"
    path.write_text(config)
    log = CACHE / f"{name}.log"
    command = ["taskset", "-c", cores, EXE, "serve", "--config", str(path)]
    if workers > 1:
        command += ["--workers", str(workers)]
    env = {**os.environ, **router_env(), **(env or {})}
    started = time.monotonic()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=CACHE
        )
    try:
        ready = measure.first_200(port, CLIENT_KEY, model, started + timeout, process)
        if ready is None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"llm-switchyard never answered 200 ({log}):\n{tail}")
        target = Target("router", "llm-switchyard", port, key=CLIENT_KEY, model=model)
        time.sleep(settle)
        yield Router(process, target, round(ready - started, 3), log)
    finally:
        procs.stop(process)


def rss_mb(pid: int) -> float:
    return round(procfs.rss_bytes(pid) / 2**20, 2)


def verdict(figure: str, sizes: list[Any], values: list[float | None], unit: str) -> dict:
    """Is `figure` flat over `sizes`: the largest value within 10% of the smallest?"""
    nums = [v for v in values if v is not None]
    ratio = max(nums) / min(nums) if len(nums) > 1 and min(nums) > 0 else None
    return {
        "figure": figure,
        "unit": unit,
        "sizes": sizes,
        "values": values,
        "max_over_min": None if ratio is None else round(ratio, 3),
        "flat": None if ratio is None else ratio <= FLAT,
        # the largest size's figure more than 10% above the cheapest size's: it grows
        "grows": None if ratio is None else nums[-1] > min(nums) * FLAT,
    }


@dataclass
class Report:
    """One scenario's results: a row per size, the verdicts, notes, and its README line."""

    scenario: str
    title: str
    argv: list[str]
    columns: list[tuple[str, str, int]]  # (heading, row key, decimals)
    rows: list[dict] = field(default_factory=list)
    verdicts: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    line: str = ""  # one line for the README: the axis, its figures, its verdict
    extra: dict = field(default_factory=dict)

    def meta(self) -> dict:
        return {
            "command": "python -m bench " + " ".join(self.argv),
            "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
            "load_before": os.getloadavg(),
        }

    def markdown(self, meta: dict) -> str:
        lines = [
            f"### {self.title}",
            "",
            f"Command: `{meta['command']}`  ",
            f"When: {meta['when']}; {meta['machine']}; load average before: "
            + ", ".join(f"{x:.2f}" for x in meta["load_before"]),
            "",
            "| " + " | ".join(c[0] for c in self.columns) + " |",
            "|---" * len(self.columns) + "|",
        ]
        for row in self.rows:
            lines.append("| " + " | ".join(_cell(row.get(k), d) for _, k, d in self.columns) + " |")
        if self.verdicts:
            lines += ["", "| per unit of work | values (smallest to largest size) | max/min "
                      "| flat within 10%? |", "|---|---|---|---|"]  # fmt: skip
            for v in self.verdicts:
                values = ", ".join(_cell(x, 4) for x in v["values"])
                flat = yes(v, bold=True)
                ratio = _cell(v["max_over_min"], 2)
                lines.append(f"| {v['figure']} ({v['unit']}) | {values} | {ratio} | {flat} |")
        if self.notes:
            lines += ["", *[f"- {note}" for note in self.notes]]
        if self.line:
            lines += ["", f"In one line: {self.line}"]
        return "\n".join(lines) + "\n"

    def write(self, out: Path) -> str:
        out.parent.mkdir(parents=True, exist_ok=True)
        meta = self.meta()
        data = {
            "scenario": self.scenario,
            "meta": meta,
            "rows": self.rows,
            "verdicts": self.verdicts,
            "notes": self.notes,
            "line": self.line,
            **self.extra,
        }
        out.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
        text = self.markdown(meta)
        out.with_suffix(".md").write_text(text)
        return text


def _cell(value: Any, digits: int) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def per(value: float | None, count: float | None, scale: float = 1.0) -> float | None:
    """`value / count * scale`, or None when there is nothing to divide by."""
    if value is None or not count:
        return None
    return value / count * scale


def num(value: float | None, digits: int) -> str:
    """A figure for a sentence: thousands separated, or n/a."""
    return "n/a" if value is None else f"{value:,.{digits}f}"


def yes(verdict: dict, bold: bool = False) -> str:
    """A verdict in words: yes, no (it falls as the work grows), or no (it grows)."""
    if verdict["flat"] is None:
        return "n/a"
    if verdict["flat"]:
        return "yes"
    if not verdict.get("grows"):
        return "no, it falls as the work grows"
    return "**no, it grows**" if bold else "no, it grows"
