"""The benchmark harness runs end to end (quick mode) against the router and the upstream.

LiteLLM and nginx are left out so that this stays a few seconds; the full comparison is
`python -m bench` (see bench/README.md).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    not shutil.which("wrk") or not shutil.which("taskset") or (os.cpu_count() or 1) < 2,
    reason="the benchmark needs wrk (apt-get install wrk), taskset and two cores",
)


def test_quick_run_measures_router_and_direct(tmp_path):
    out = tmp_path / "latest"
    command = [sys.executable, "-m", "bench", "--quick", "--no-install", "--only", "direct,router"]
    done = subprocess.run(
        [*command, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(out.with_suffix(".json").read_text())
    router, direct = data["summary"]["router"], data["summary"]["direct"]
    for summary in (router, direct):
        assert summary["errors"] == 0
        for key in ("rps_c1", "rps_c32", "rps_c64", "streams_c16"):
            assert summary[key]["median"] > 0, key
        assert summary["ttft_c1"]["median"] > 0
    assert router["startup_s"] > 0
    assert router["cpu_ms_c64"]["median"] > 0
    assert router["rss_idle_mb"] > 10
    assert router["added_p50_c1"] is not None
    table = out.with_suffix(".md").read_text()
    assert "| llm-router |" in table and "| direct to the upstream |" in table
