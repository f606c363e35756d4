"""The rate-limit bucket benchmark runs end to end with small fills (seconds, not minutes)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # a benchmark run, if a short one
def test_bucket_benchmark_measures_both_backends() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.limits", "--entries", "1,300"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split("|")[1:-1] for line in done.stdout.splitlines() if line.startswith("| ")]
    rows = [[cell.strip() for cell in row] for row in rows[1:]]  # past the header
    backends = {"memory", "redis"} if shutil.which("redis-server") else {"memory"}
    assert {row[0] for row in rows} == backends
    assert len(rows) == 4 * len(backends)
    for _backend, _window, _admissions, held, per_acquire, _ in rows:
        assert int(held.replace(",", "")) > 0
        assert float(per_acquire) > 0
