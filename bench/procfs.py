"""CPU time, RSS and per-core busy share from /proc, for a process and its descendants.

A proxy may be several processes (nginx's master and worker, LiteLLM's children), so every
figure sums the whole tree under the process the harness started.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from `state` on


def tree(root: int) -> list[int]:
    """`root` and all its descendants."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat(int(name))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def _field_total(root: int, *indexes: int) -> int:
    """The sum over the tree of the given `/proc/PID/stat` fields (counted from `state`)."""
    total = 0
    for pid in tree(root):
        fields = _stat(pid)
        if fields:
            total += sum(int(fields[i]) for i in indexes)
    return total


def cpu_seconds(root: int) -> float:
    """User + system CPU seconds of the tree so far."""
    return _field_total(root, 11, 12) / TICK  # utime, stime


def minor_faults(root: int) -> int:
    """Page faults of the tree so far that needed no disk: each a page the kernel had to
    find and zero (memory mapped afresh, or touched for the first time)."""
    return _field_total(root, 7)  # minflt


def system_seconds(root: int) -> float:
    """The kernel's share of `cpu_seconds`."""
    return _field_total(root, 12) / TICK  # stime


def rss_bytes(root: int) -> int:
    total = 0
    for pid in tree(root):
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except OSError:
            pass
    return total


def core_times() -> list[tuple[int, int]]:
    """(busy, total) jiffies per core."""
    out = []
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                values = [int(v) for v in line.split()[1:]]
                idle = values[3] + values[4]
                out.append((sum(values) - idle, sum(values)))
    return out


def busy_shares(before: list[tuple[int, int]], after: list[tuple[int, int]]) -> list[float]:
    return [
        round((b2 - b1) / max(1, t2 - t1), 3)
        for (b1, t1), (b2, t2) in zip(before, after, strict=True)
    ]


@dataclass
class Sampler:
    """Peak RSS of a tree while a measurement runs, sampled in a thread."""

    root: int
    interval: float = 0.25
    peak: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_bytes(self.root))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def open_fds(root: int) -> int:
    """File descriptors open in the tree: a held stream should cost two (client, upstream)."""
    total = 0
    for pid in tree(root):
        with contextlib.suppress(OSError):
            total += len(os.listdir(f"/proc/{pid}/fd"))
    return total


def _status_field(pid: int, name: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def threads(root: int) -> int:
    return sum(_status_field(pid, "Threads") for pid in tree(root))


def reset_peak_rss(root: int) -> None:
    """Start the peak-RSS high-water marks again from the current RSS (Linux `clear_refs`)."""
    for pid in tree(root):
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass


def peak_rss_bytes(root: int) -> int:
    """The tree's peak RSS since the last `reset_peak_rss` (each process's VmHWM, summed):
    exact, where sampling would miss a short request's peak."""
    return sum(_status_field(pid, "VmHWM") for pid in tree(root)) * 1024
