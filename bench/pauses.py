"""Pauses of the CPUs themselves: times when no process could run on a core.

`python -m bench.pauses --core N` wakes every millisecond on core N, at real-time priority
where the system allows it (`SCHED_FIFO`: it then runs the moment it wakes, ahead of any
ordinary process, the router included), and notes every wake-up later than `--late` ms:
only an interrupt or the hypervisor can hold it back that long. It runs until its stdin
closes, then prints one JSON object: whether it ran at real-time priority and the late
intervals, (start, end) on the monotonic clock, which all processes of the machine share.

`Watch` runs one on each of the two cores the benchmark uses (the router's, and its load
generators' and upstream's): a late wake-up there is a core the guest could not use, as a
virtual machine's CPU is when its host runs something else on it or throttles it, and any
process on that core, the router included, stood still as long. The streams scenario counts
them during its latency windows, and the slow short requests that overlapped one. Each
watcher costs about a thousand wake-ups a second on its core.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

from bench import procs

EVERY = 0.001  # seconds between wake-ups
LATE_MS = 4.0


def watch(late_ms: float, stop: threading.Event) -> list[tuple[float, float]]:
    """Late wake-ups until `stop` is set: [(when the wake-up was due, when it came)]."""
    late = late_ms / 1000 + EVERY
    clock = time.monotonic
    spans: list[tuple[float, float]] = []
    before = clock()
    while not stop.is_set():
        time.sleep(EVERY)
        now = clock()
        if now - before > late:
            spans.append((round(before + EVERY, 6), round(now, 6)))
        before = now
    return spans


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--core", type=int, required=True)
    parser.add_argument("--late", type=float, default=LATE_MS, help="ms late that counts")
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {args.core})
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        realtime = True
    except (PermissionError, OSError):
        realtime = False
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    spans = watch(args.late, stop)
    sys.stdout.write(json.dumps({"core": args.core, "realtime": realtime, "late": spans}) + "\n")
    return 0


class Watch:
    """A watcher on each of cores 0 and 1 while the block runs; `pauses` after it."""

    def __init__(self, late_ms: float = LATE_MS) -> None:
        self.late_ms = late_ms
        self.realtime = False
        self.pauses: list[tuple[float, float]] = []  # on either core, by start
        self.both = 0  # pauses of one core that overlapped one of the other

    def __enter__(self) -> Watch:
        command = [sys.executable, "-m", "bench.pauses", "--late", str(self.late_ms)]
        self._watchers = [
            subprocess.Popen(
                [*command, "--core", str(core)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=procs.ROOT,
            )
            for core in (0, 1)
        ]
        return self

    def __exit__(self, *exc: object) -> None:
        found = [json.loads(watcher.communicate(timeout=30)[0]) for watcher in self._watchers]
        self.realtime = all(f["realtime"] for f in found)
        first, second = found[0]["late"], found[1]["late"]
        self.pauses = sorted((start, end) for start, end in first + second)
        self.both = sum(any(a0 < b1 and b0 < a1 for b0, b1 in second) for a0, a1 in first)

    def summary(self, slow: list[list[float]]) -> dict:
        """The pauses, and how many of the `slow` requests' (start, end) overlapped one."""
        overlapped = sum(
            any(start < p1 and p0 < end for p0, p1 in self.pauses) for start, end in slow
        )
        longest = max(((p1 - p0) * 1000 for p0, p1 in self.pauses), default=0.0)
        return {
            "pauses": len(self.pauses),
            "both_cores": self.both,
            "longest_pause_ms": round(longest, 1),
            "slow": len(slow),
            "slow_in_pauses": overlapped,
            "realtime": self.realtime,
        }


if __name__ == "__main__":
    raise SystemExit(main())
