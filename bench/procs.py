"""Processes the harness starts: free ports, waiting for a listener, stopping cleanly, the
fake upstream, and enough file descriptors for 10,000 streams."""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPEN_FILES = 65536  # a held stream costs the router two (client and upstream) and the client one


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listening on port {port}")


def stop(process: subprocess.Popen[bytes] | None, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL after `timeout`: every process the harness started ends here."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def raise_open_files(want: int = OPEN_FILES) -> int:
    """Raise this process's descriptor limit (children inherit it); the limit now in force.
    As root the hard limit rises too; otherwise the soft one goes up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
        return want
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@contextlib.contextmanager
def upstream() -> Iterator[tuple[int, int]]:
    """The fake upstream on a free port, on the harness's core: (port, pid)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.upstream", "--port", str(port)], cwd=ROOT
    )
    try:
        wait_port(port)
        yield port, process.pid
    finally:
        stop(process)


def pin_harness() -> None:
    """The harness and everything it starts live on core 1; proxies go to core 0 through
    `taskset -c 0`."""
    os.sched_setaffinity(0, {1})
