"""A reload's compile kept from taking the core from the requests served meanwhile: the
event loop gets the interpreter back quickly (`loop_first`) and the compile takes at most a
share of the core (`Paced`), a short slice at a time (`router.checkpoints`)."""

from __future__ import annotations

import contextlib
import gc
import sys
import time
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from router.checkpoints import checkpoint, pausing
from router.graph.load import young_collections_only
from router.graph.shared_setting import SharedSetting

RELOAD_SWITCH_SECONDS = 0.0002  # see `loop_first`
RELOAD_SHARE = 0.1  # of a core a reload's compile takes at most (see `Paced`)
SLICE_SECONDS = 0.0005  # a paced compile runs this long at most between two pauses
_switch = SharedSetting(sys.getswitchinterval, sys.setswitchinterval)
T = TypeVar("T")


class Paced(Generic[T]):
    """A reload's compile held to `RELOAD_SHARE` of a core, a short slice at a time, so that
    the requests served meanwhile keep the rest: a compile of 10,000 keys took half the core
    for 1.8 s, and the p99 of the requests served meanwhile was 8x the calm one (2.7x at a
    tenth, a quarter gave 5.7x: `python -m bench --scenario big-config`).

    At each pause point once `SLICE_SECONDS` have passed since the last pause, it sleeps for
    as long as keeps its CPU time to that share of the time passed. The pause points are the
    checkpoints of the config's load (`router.checkpoints`: once a key, model, YAML mapping)
    and the young collections its thread runs (points where it holds nothing, in the
    libraries' code too). The collections alone were too few: a busy event loop runs most of
    them, and the compile ran 10-80 ms at a stretch, taking half the core each time while
    the loop waited its turns for the interpreter (the p99 of the requests meanwhile was
    twice the calm one). A reload of a big config takes longer (about 14 s for 10,000
    keys); no request waits on it."""

    def __init__(self, compiled: Callable[[bytes, str], T]) -> None:
        self.compiled = compiled
        self.cpu = 0.0  # the thread's CPU time at the last pause
        self.due = 0.0  # `time.perf_counter()` at which the next pause is due

    def compile(self, data: bytes, path: str) -> T:
        """`compiled(data, path)`, paced: called in the reload's worker thread."""
        self.cpu = time.thread_time()
        self.due = time.perf_counter() + SLICE_SECONDS
        gc.callbacks.append(self._pace)
        try:
            with pausing(self):
                return self.compiled(data, path)
        finally:
            gc.callbacks.remove(self._pace)

    def pause(self) -> None:
        """Sleep as long as keeps the CPU time since the last pause to `RELOAD_SHARE`."""
        ran = time.thread_time() - self.cpu
        time.sleep(ran * (1 / RELOAD_SHARE - 1))
        self.cpu = time.thread_time()
        self.due = time.perf_counter() + SLICE_SECONDS

    def _pace(self, phase: str, info: dict[str, int]) -> None:
        if phase == "stop":  # (a checkpoint: in the compile's thread this, elsewhere nothing)
            checkpoint()


@contextlib.contextmanager
def loop_first() -> Iterator[None]:
    """While a reload compiles in its thread, keep the event loop serving. The loop gets the
    interpreter back within `RELOAD_SWITCH_SECONDS` of asking, not Python's default 5 ms
    (each step of a request waited that long behind a big config's compile). And only young
    collections run, which see a few thousand objects each: a compile makes no cyclic
    garbage, but hundreds of thousands of objects that the older generations' collections
    would walk, each walk holding the interpreter (40-140 ms apiece, and a full one of 0.4 s,
    for 10,000 keys), while the young ones still collect what requests leave meanwhile. Once
    compiled, the new graph is moved out of the collector's sight like the start-up objects
    (`gctune`); an old graph, once replaced, is freed a batch at a time (`retire`). Two
    reloads at once (two apps in one process) put the settings back when both are done."""
    quick = _switch.changed(lambda found: min(found, RELOAD_SWITCH_SECONDS))
    try:
        with quick, young_collections_only():
            yield
    finally:
        gc.freeze()
