"""Medians with their spread, the issue's targets checked, and the JSON + Markdown files."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from bench.upstream import CHUNKS, FIRST_TOKEN, GAP


def _stat(values: list[float | None]) -> dict[str, float] | None:
    nums = [v for v in values if v is not None]
    if not nums:
        return None
    return {"median": statistics.median(nums), "min": min(nums), "max": max(nums)}


def summarize(result: dict) -> dict[str, Any]:
    runs = result["runs"]

    def pick(kind: str, key: str) -> dict[str, float] | None:
        return _stat([r.get(key) for r in runs[kind]])

    out: dict[str, Any] = {
        "label": result["label"],
        "startup_s": result["startup_s"],
        "rss_idle_mb": result["rss_idle_mb"],
        "cpu_is": result["cpu_is"],
        "errors": sum(r["errors"] for kind in runs.values() for r in kind),
        "failures": result.get("failures", []),
    }
    for c in (1, 32, 64):
        out[f"rps_c{c}"] = pick(f"c{c}", "rps")
        out[f"p50_c{c}"] = pick(f"c{c}", "p50_ms")
        out[f"p99_c{c}"] = pick(f"c{c}", "p99_ms")
        out[f"cpu_ms_c{c}"] = pick(f"c{c}", "cpu_ms_per_request")
    for c in (1, 16):
        out[f"ttft_c{c}"] = pick(f"s{c}", "ttft_p50_ms")
        out[f"total_c{c}"] = pick(f"s{c}", "total_p50_ms")
        out[f"streams_c{c}"] = pick(f"s{c}", "streams_per_s")
    out["cpu_ms_stream_c16"] = pick("s16", "cpu_ms_per_request")
    out["core_busy_c64"] = (
        [statistics.median(r["core_busy"][i] for r in runs["c64"]) for i in range(2)]
        if runs["c64"]
        else None
    )
    peaks = [r["rss_peak_mb"] for r in runs["c64"] + runs["c32"] if r.get("rss_peak_mb")]
    out["rss_load_mb"] = max(peaks) if peaks else None
    return out


def _m(summary: dict, key: str) -> float | None:
    value = summary.get(key)
    return value["median"] if isinstance(value, dict) else value


def added(summaries: dict[str, dict]) -> None:
    """Latency and TTFT added over direct, from the medians."""
    direct = summaries.get("direct")
    for summary in summaries.values():
        for key in ("p50_c1", "p99_c1", "ttft_c1", "ttft_c16"):
            base, own = (_m(direct, key) if direct else None), _m(summary, key)
            summary[f"added_{key}"] = (
                round(own - base, 3) if base is not None and own is not None else None
            )


def checks(s: dict[str, dict]) -> list[tuple[str, str, bool | None]]:
    """The issue's targets for the router: (target, measured, met?)."""
    r = s.get("router")
    if r is None:
        return []

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    lite, relay, portkey = s.get("litellm", {}), s.get("relay", {}), s.get("portkey", {})
    rows: list[tuple[str, str, bool | None]] = []

    def row(name: str, value: float | None, fmt: str, ok: bool | None) -> None:
        rows.append((name, "n/a" if value is None else fmt.format(value), ok))

    cpu = ratio(_m(r, "cpu_ms_c64"), _m(relay, "cpu_ms_c64"))
    row("CPU/request c=64 <= 1.2x bare relay", cpu, "{:.2f}x", None if cpu is None else cpu <= 1.2)
    cpu_s = ratio(_m(r, "cpu_ms_stream_c16"), _m(relay, "cpu_ms_stream_c16"))
    ok_s = None if cpu_s is None else cpu_s <= 1.2
    row("CPU/stream c=16 <= 1.2x bare relay", cpu_s, "{:.2f}x", ok_s)
    pk = ratio(_m(r, "rps_c64"), _m(portkey, "rps_c64"))
    row("req/s c=64 >= 5x Portkey", pk, "{:.1f}x", None if pk is None else pk >= 5)
    tp = ratio(_m(r, "rps_c64"), _m(lite, "rps_c64"))
    row("req/s c=64 >= 40x LiteLLM", tp, "{:.1f}x", None if tp is None else tp >= 40)
    for key, limit, name in (
        ("added_p50_c1", 1.0, "added p50 c=1 <= 1 ms"),
        ("added_p99_c1", 3.0, "added p99 c=1 <= 3 ms"),
        ("added_ttft_c1", 1.0, "added TTFT c=1 <= 1 ms"),
    ):
        value = r.get(key)
        row(name, value, "{:.2f} ms", None if value is None else value <= limit)
    st = ratio(_m(r, "streams_c16"), _m(lite, "streams_c16"))
    row("streams/s c=16 >= 15x LiteLLM", st, "{:.1f}x", None if st is None else st >= 15)
    rss = r.get("rss_idle_mb")
    row("idle RSS <= 60 MB", rss, "{:.1f} MB", None if rss is None else rss <= 60)
    up = r.get("startup_s")
    row("start-up to first 200 <= 1.5 s", up, "{:.2f} s", None if up is None else up <= 1.5)
    row("zero errors", r["errors"], "{}", r["errors"] == 0)
    for name, api in (("router-responses", "Responses"), ("router-messages", "Messages")):
        other = s.get(name)
        if other is None:
            continue
        for key, what in (
            ("cpu_ms_c64", "CPU/request c=64"),
            ("cpu_ms_stream_c16", "CPU/stream c=16"),
        ):
            value = ratio(_m(other, key), _m(r, key))
            ok = None if value is None else value <= 1.3
            row(f"{api} API {what} <= 1.3x chat's", value, "{:.2f}x", ok)
        row(f"{api} API zero errors", other["errors"], "{}", other["errors"] == 0)
    return rows


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, dict):
        med, lo, hi = value["median"], value["min"], value["max"]
        if lo == hi:
            return f"{med:,.{digits}f}"
        return f"{med:,.{digits}f} ({lo:,.{digits}f}-{hi:,.{digits}f})"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


COLUMNS = [
    ("req/s c=1", "rps_c1", 0),
    ("req/s c=32", "rps_c32", 0),
    ("req/s c=64", "rps_c64", 0),
    ("p50 c=1 ms", "p50_c1", 2),
    ("p99 c=1 ms", "p99_c1", 2),
    ("added p50/p99 c=1 ms", None, 2),
    ("p50/p99 c=64 ms", None, 1),
    ("CPU ms/req c=64", "cpu_ms_c64", 3),
    ("core 0/1 busy c=64", None, 2),
]
STREAM_COLUMNS = [
    ("TTFT c=1 ms", "ttft_c1", 2),
    ("added TTFT c=1 ms", "added_ttft_c1", 2),
    ("total c=1 ms", "total_c1", 1),
    ("TTFT c=16 ms", "ttft_c16", 2),
    ("total c=16 ms", "total_c16", 1),
    ("streams/s c=16", "streams_c16", 0),
    ("CPU ms/stream c=16", "cpu_ms_stream_c16", 3),
    ("idle RSS MB", "rss_idle_mb", 1),
    ("RSS under load MB", "rss_load_mb", 1),
    ("start-up s", "startup_s", 2),
    ("errors", "errors", 0),
]


def _cell(s: dict, title: str, key: str | None, digits: int) -> str:
    if title.startswith("added p50/p99"):
        return f"{_fmt(s.get('added_p50_c1'), 2)} / {_fmt(s.get('added_p99_c1'), 2)}"
    if title.startswith("p50/p99 c=64"):
        return f"{_fmt(_m(s, 'p50_c64'), 1)} / {_fmt(_m(s, 'p99_c64'), 1)}"
    if title.startswith("core 0/1"):
        if not s["core_busy_c64"]:
            return "n/a"
        a, b = s["core_busy_c64"]
        return f"{a:.2f} / {b:.2f}"
    return _fmt(s.get(key), digits)  # type: ignore[arg-type]


def _table(summaries: dict[str, dict], columns: list[tuple[str, str | None, int]]) -> list[str]:
    lines = ["| target | " + " | ".join(c[0] for c in columns) + " |"]
    lines.append("|---" * (len(columns) + 1) + "|")
    for s in summaries.values():
        cells = [_cell(s, title, key, digits) for title, key, digits in columns]
        lines.append(f"| {s['label']} | " + " | ".join(cells) + " |")
    return lines


RATIO_FIGURES = (
    ("req/s c=64", "rps_c64"),
    ("req/s c=1", "rps_c1"),
    ("CPU ms/req c=64", "cpu_ms_c64"),
    ("CPU ms/stream c=16", "cpu_ms_stream_c16"),
    ("streams/s c=16", "streams_c16"),
    ("added p50 c=1 ms", "added_p50_c1"),
    ("added TTFT c=1 ms", "added_ttft_c1"),
    ("idle RSS MB", "rss_idle_mb"),
    ("start-up s", "startup_s"),
)


def _ratios(summaries: dict[str, dict]) -> list[str]:
    """The router's figures as ratios to each other target of the same run."""
    r = summaries.get("router")
    others = [n for n in ("relay", "litellm", "portkey", "nginx") if n in summaries]
    if not r or not others:
        return []
    lines = ["", "The router's figures as ratios to the others' in this run (router / other):", ""]
    heads = [summaries[n]["label"] for n in others]
    lines += ["| figure | llm-switchyard | " + " | ".join(heads) + " |"]
    lines.append("|---" * (len(others) + 2) + "|")
    for title, key in RATIO_FIGURES:
        mine = _m(r, key)
        cells = []
        for name in others:
            theirs = _m(summaries[name], key)
            cells.append(f"{mine / theirs:.2f}x" if mine is not None and theirs else "n/a")
        lines.append(f"| {title} | {_fmt(mine, 3)} | " + " | ".join(cells) + " |")
    return lines


def _failures(summaries: dict[str, dict]) -> list[str]:
    lines = []
    for s in summaries.values():
        lines += [f"- {s['label']}: {failure}" for failure in s.get("failures", [])]
    return ["", "Phases that failed (their cells read n/a):", "", *lines] if lines else []


def markdown(meta: dict, summaries: dict[str, dict]) -> str:
    lines = [
        f"Command: `{meta['command']}`  ",
        f"When: {meta['when']}; {meta['machine']}; load average before: "
        + ", ".join(f"{x:.2f}" for x in meta["load_before"])
        + f"; {meta['repeat']} repetition(s) of {meta['duration_s']:g} s (streams "
        f"{meta['stream_duration_s']:g} s). Medians, (min-max) over repetitions.",
        "",
        "Non-streaming (wrk):",
        "",
        *_table(summaries, COLUMNS),
        "",
        f"Streaming ({CHUNKS} chunks, the first {FIRST_TOKEN * 1000:g} ms after the headers, "
        f"then {GAP * 1000:g} ms apart) and resources:",
        "",
        *_table(summaries, STREAM_COLUMNS),
        "",
        "The direct row's CPU and RSS are the fake upstream's own.",
        *_failures(summaries),
        *_ratios(summaries),
    ]
    rows = checks(summaries)
    if rows:
        lines += ["", "The issue's targets for llm-switchyard:", "", "| target | measured | met |"]
        lines.append("|---|---|---|")
        for name, value, ok in rows:
            mark = "n/a" if ok is None else ("yes" if ok else "**no**")
            lines.append(f"| {name} | {value} | {mark} |")
    return "\n".join(lines) + "\n"


def write(out: Path, meta: dict, results: dict[str, dict]) -> str:
    summaries = {name: summarize(result) for name, result in results.items()}
    added(summaries)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = {"meta": meta, "summary": summaries, "results": results, "checks": checks(summaries)}
    out.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    text = markdown(meta, summaries)
    out.with_suffix(".md").write_text(text)
    return text
