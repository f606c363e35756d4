"""A reload's compile takes its share of the core a short slice at a time: it pauses at the
checkpoints of the config's load (`router.checkpoints`), not only after the young
collections its own thread happens to run, which a busy event loop mostly runs instead.

Measured from outside the compile: its thread's CPU clock, read every millisecond, and the
most CPU it took in any window of the given length."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable

from bench import bigconfig
from bench.routerconf import router_env
from router import checkpoints
from router.graph import load, pacing

SAMPLE_SECONDS = 0.001


def _most_cpu_in_a_window(run: Callable[[], object], window: float) -> tuple[float, float]:
    """Run `run` in a thread; (the most CPU seconds it took in any `window` seconds, its wall
    time). The main thread only reads the thread's CPU clock, a millisecond apart."""
    thread = threading.Thread(target=run)
    started = time.monotonic()
    thread.start()
    assert thread.ident is not None
    clock = time.pthread_getcpuclockid(thread.ident)
    samples: list[tuple[float, float]] = []
    while thread.is_alive():
        try:
            samples.append((time.monotonic(), time.clock_gettime(clock)))
        except OSError:  # (the thread ended between the check and the read)
            break
        time.sleep(SAMPLE_SECONDS)
    thread.join()
    took = time.monotonic() - started
    most, first = 0.0, 0
    for last in range(len(samples)):
        while samples[last][0] - samples[first][0] > window:
            first += 1
        most = max(most, samples[last][1] - samples[first][1])
    return most, took


def _spin(cpu_seconds: float, pause_point: Callable[[], None]) -> Callable[[bytes, str], None]:
    """A compile that computes without allocating anything the collector tracks (so no young
    collection ever paces it) and passes `pause_point` every few microseconds."""

    def compiled(data: bytes, path: str) -> None:
        started = time.thread_time()
        while time.thread_time() - started < cpu_seconds:
            total = 0
            for i in range(200):
                total += i * i
            pause_point()

    return compiled


def test_a_compile_that_passes_checkpoints_takes_a_slice_at_a_time() -> None:
    paced = pacing.Paced(_spin(0.05, checkpoints.checkpoint))
    most, took = _most_cpu_in_a_window(lambda: paced.compile(b"", "x.yaml"), 0.01)
    # At most a slice (0.5 ms) and a pause's rounding in any 10 ms, where an unpaced stretch
    # would take all 10; the whole, at a tenth of the core, about ten times its CPU time.
    assert most <= 0.003, f"{most * 1000:.1f} ms of CPU in a 10 ms window"
    assert took >= 0.05 / pacing.RELOAD_SHARE * 0.5


def test_without_checkpoints_nothing_paces_such_a_compile() -> None:
    """The measure above tells a paced compile from an unpaced one: the same work, passing
    no checkpoint, runs through."""
    paced = pacing.Paced(_spin(0.05, lambda: None))
    most, took = _most_cpu_in_a_window(lambda: paced.compile(b"", "x.yaml"), 0.01)
    assert most >= 0.004 and took < 0.05 / pacing.RELOAD_SHARE * 0.5


def _quickest(call: Callable[[], None], times: int = 10_000) -> float:
    """The quickest of five runs of `times` calls of `call`, in seconds."""
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(times):
            call()
        runs.append(time.perf_counter() - started)
    return min(runs)


def test_checkpoints_outside_a_paced_compile_cost_about_a_call() -> None:
    """Start-up and `check` load a config through the same checkpoints, a few hundred
    thousand for 10,000 keys: outside a paced compile each is a look-up and nothing more (a
    `getattr` with a default, raising and catching inside, made a load 18% slower)."""

    def nothing() -> None:
        return None

    assert _quickest(checkpoints.checkpoint) < 6 * _quickest(nothing)  # (2-3x, measured)


def test_a_big_configs_reload_beside_a_busy_event_loop_takes_its_share_in_short_slices() -> None:
    """The benchmark's big config (100 models, 20 providers, 1,000 keys) compiled as a reload
    compiles it, while another thread plays a busy event loop: allocating and freeing
    containers as requests do, it runs most of the young collections. In no 40 ms did the
    compile take more than a third of the core (5-7 ms of CPU at most, measured); paced by
    its own collections only, it took 31 ms of some 40, and the whole compile ran in about
    twice its unpaced time instead of ten."""
    size = bigconfig.Size.scaled(100)
    data = bigconfig.text(9, 9, size).encode()
    environ = {**router_env(), **bigconfig.key_env(size)}
    load.graph_from_bytes(data, "big.yaml", environ)  # (plugins found, modules imported)
    stop = threading.Event()

    def event_loop() -> None:
        while not stop.is_set():
            requests = [{"id": i, "headers": [i]} for i in range(300)]
            del requests
            time.sleep(0.0001)

    loop = threading.Thread(target=event_loop)
    thresholds = gc.get_threshold()
    gc.set_threshold(7000, *thresholds[1:])  # the served router's (`router.http.gctune`)
    loop.start()
    try:
        paced = pacing.Paced(lambda d, p: load.graph_from_bytes(d, p, environ))
        with pacing.loop_first():
            most, took = _most_cpu_in_a_window(lambda: paced.compile(data, "big.yaml"), 0.04)
    finally:
        stop.set()
        loop.join()
        gc.set_threshold(*thresholds)
    assert most <= 0.04 / 3, f"{most * 1000:.1f} ms of CPU in a 40 ms window (took {took:.2f} s)"
