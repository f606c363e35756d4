"""The benchmark harness runs end to end (quick mode) against the router and the upstream.

LiteLLM, Portkey and nginx are left out so that this stays a few seconds; the full comparison
is `python -m bench` (see bench/README.md). One scenario along an axis of work runs too, in
quick form with small sizes: the many-streams one, whose client holds streams open, and the
long-streams one, whose upstream shape is picked by the model name.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not shutil.which("wrk") or not shutil.which("taskset") or (os.cpu_count() or 1) < 2,
        reason="the benchmark needs wrk (apt-get install wrk), taskset and two cores",
    ),
]


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bench", "--quick", "--no-install", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=100)


def test_quick_run_measures_router_and_direct(tmp_path):
    out = tmp_path / "latest"
    done = _bench("--only", "direct,router,router-responses,router-messages", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(out.with_suffix(".json").read_text())
    router, direct = data["summary"]["router"], data["summary"]["direct"]
    for summary in (router, direct):
        assert summary["errors"] == 0
        assert summary["failures"] == []
        for key in ("rps_c1", "rps_c32", "rps_c64", "streams_c16"):
            assert summary[key]["median"] > 0, key
        assert summary["ttft_c1"]["median"] > 0
    assert router["startup_s"] > 0
    assert router["cpu_ms_c64"]["median"] > 0
    assert router["cpu_ms_stream_c16"]["median"] > 0
    assert router["rss_idle_mb"] > 10
    assert router["added_p50_c1"] is not None
    table = out.with_suffix(".md").read_text()
    assert "| llm-switchyard |" in table and "| direct to the upstream |" in table
    # The Responses and Messages rows: the same router, their own requests and streams, and
    # their CPU per request and per stream against chat completions' in the same run.
    for name, api in (("router-responses", "Responses"), ("router-messages", "Messages")):
        summary = data["summary"][name]
        assert summary["errors"] == 0 and summary["failures"] == []
        assert summary["rps_c64"]["median"] > 0 and summary["streams_c16"]["median"] > 0
        assert summary["ttft_c1"]["median"] > 0
        assert f"| llm-switchyard, {api} API |" in table
        checked = {row[0]: row[1] for row in data["checks"]}
        assert checked[f"{api} API CPU/request c=64 <= 1.3x chat's"].endswith("x")
        assert checked[f"{api} API CPU/stream c=16 <= 1.3x chat's"].endswith("x")
    # the router's config references its secrets, as a user's would
    config = (ROOT / "bench" / ".cache" / "router.yaml").read_text()
    assert "${BENCH_UPSTREAM_KEY}" in config and "sk-bench-upstream" not in config


def test_streams_scenario_holds_streams_open_and_reports_per_stream_costs(tmp_path):
    out = tmp_path / "streams"
    done = _bench("--scenario", "streams", "--sizes", "20,60", "--duration", "1", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(out.with_suffix(".json").read_text())
    assert [row["streams"] for row in data["rows"]] == [20, 60]
    for row in data["rows"]:
        assert row["opened"] == row["streams"] and row["still_open"] == row["streams"]
        assert row["errors"] == 0
        assert 1.5 <= row["fds_per_stream"] <= 2.5  # one to the client, one upstream
        assert row["kb_per_stream"] is not None and row["chunks"] > 0
        assert row["idle_p99_ms"] > 0 and row["busy_p99_ms"] > 0
        # the router's loop lag, read from its /metrics: a bucket bound in ms
        assert row["lag_p99_ms"] in (2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
        assert row["lag_busy_p99_ms"] is not None
        # each short request's own latency, and wrk's (corrected) beside it
        assert row["wrk_idle_p99_ms"] > 0 and row["wrk_busy_p99_ms"] > 0
        assert row["p99_ratio"] > 0 and row["wrk_p99_ratio"] > 0
        # the CPU pauses watched meanwhile, and the slow requests that overlapped one
        assert row["idle_pauses"] >= 0 and row["busy_pauses"] >= 0
        assert 0 <= row["busy_slow_in_pauses"] <= row["busy_slow"]
        assert row["pauses_watched_realtime"] in (True, False)
    figures = [v["figure"] for v in data["verdicts"]]
    assert figures == ["memory per open stream", "CPU per chunk", "descriptors per open stream"]
    for v in data["verdicts"]:
        assert len(v["values"]) == 2
        # A verdict needs two positive values; 20 streams may not move the RSS on a busy
        # machine (a value of 0 or less), which gives no ratio rather than a wrong one.
        measured = [x for x in v["values"] if x is not None]
        assert v["flat"] in (True, False) or min(measured, default=0) <= 0, v
    assert "open streams (20 to 60" in data["line"]
    assert "| per unit of work |" in out.with_suffix(".md").read_text()


def test_long_streams_scenario_gets_the_chunks_it_asks_for(tmp_path):
    out = tmp_path / "long"
    done = _bench("--scenario", "long-streams", "--sizes", "10,50", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(out.with_suffix(".json").read_text())
    for row, length in zip(data["rows"], (10, 50), strict=True):
        assert row["errors"] == 0 and row["streams"] > 0
        # each stream: `length` content events, then [DONE]
        assert row["chunks"] == row["streams"] * (length + 1)
        assert row["cpu_us_per_chunk"] > 0 and row["marginal_us_per_chunk"] is not None
    assert data["verdicts"][0]["figure"] == "CPU per chunk beyond the stream's own"


def test_big_bodies_scenario_reports_copies_page_faults_and_kernel_cpu(tmp_path):
    out = tmp_path / "bodies"
    done = _bench("--scenario", "big-bodies", "--sizes", "200000,3000000", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(out.with_suffix(".json").read_text())
    small, big = data["rows"]
    assert small["errors"] == big["errors"] == 0 and small["requests"] and big["requests"]
    assert big["copies"] > 1  # at least the body itself, while it is read
    assert big["kernel_ms_per_request"] > 0
    # A 3 MB body's parser work area (36 MB) is past glibc's largest mmap threshold: with
    # malloc's own settings it would be mapped afresh, about 750 faults a request.
    assert big["faults_per_request"] < 100
    assert "page faults a request at 3 MB" in (out.with_suffix(".md")).read_text()
