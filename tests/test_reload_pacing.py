"""A reload's compile takes its share of the core a short slice at a time: it pauses at the
checkpoints of the config's load (`router.checkpoints`), not only after the young
collections its own thread happens to run, which a busy event loop mostly runs instead.

Measured from outside the compile: its thread's CPU clock, read every millisecond, and the
most CPU it took in any window of the given length."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench import bigconfig
from bench.routerconf import router_env
from router import checkpoints
from router.graph import load, pacing
from router.testing import RouterProcess

SAMPLE_SECONDS = 0.001
ADMIN = "adm-paced-reload"
CLIENT = "sk-paced-reload-client"


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
    # What earlier tests left alive in this process is out of the collector's sight, as a
    # served router's start-up objects are (`router.http.gctune`): a full collection over
    # them, run by the compile's thread, is not the compile's own work.
    gc.collect()
    gc.freeze()
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


def _served_config(models: int, keys: int) -> str:
    lines = [
        f"server: {{admin_key: {ADMIN}}}",
        "providers:",
        '  m: {plugin: mock, settings: {answer: "paced"}}',
        "models:",
        *(f"  m{i:04d}: {{targets: [{{provider: m, model: m-1}}]}}" for i in range(models)),
        "keys:",
        f"  app: {{key: {CLIENT}}}",
    ]
    for k in range(keys):
        digest = hashlib.sha256(f"sk-served-{k:05d}".encode()).hexdigest()
        allowed = '["*"]' if k % 4 == 0 else f'["m{k % models:04d}", "m{(k * 7) % models:04d}"]'
        lines.append(f"  k{k:05d}: {{sha256: {digest}, models: {allowed}}}")
    return "\n".join(lines) + "\n"


def _threads_cpu(pid: int) -> dict[int, float]:
    """Each thread's CPU seconds so far, to the nanosecond (`schedstat`), by thread id."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):  # (a thread that ended)
            out[int(task.name)] = int((task / "schedstat").read_text().split()[0]) / 1e9
    return out


def test_a_served_reload_beside_busy_requests_takes_its_share_in_short_slices(
    tmp_path: Path,
) -> None:
    """`llm-switchyard serve --config PATH` with 100 models and 2,000 keys, kept busy by
    clients, reloads through `POST /admin/reload`: read from outside the process (each
    thread's CPU clock in `/proc`, as often as the test can, every few milliseconds), no
    thread but the event loop's took more than a third of a core in any 40 ms while the
    reload compiled (5.6-6.7 ms measured). Paced only by the young collections of its own
    thread (the checkpoints emptied), the compile took 27-30 ms of some 40."""
    path = tmp_path / "router.yaml"
    path.write_text(_served_config(100, 2_000))
    router = RouterProcess(path, env={"LLM_ROUTER_ACCESS_LOG": "false"}).start(timeout=120)
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=router.base_url, timeout=30) as http:
            while not stop.is_set():
                http.post(
                    "/chat/completions",
                    headers={"authorization": f"Bearer {CLIENT}"},
                    json={"model": "m0001", "messages": [{"role": "user", "content": "hi"}]},
                )

    reloaded: list[dict[str, object]] = []

    def reload() -> None:
        answer = httpx.post(
            router.url + "/admin/reload",
            headers={"authorization": f"Bearer {ADMIN}"},
            timeout=120,
        )
        reloaded.append(answer.json())

    clients = [threading.Thread(target=client) for _ in range(4)]
    try:
        assert router.process is not None
        pid = router.process.pid
        for thread in clients:
            thread.start()
        time.sleep(1.0)  # the clients under way
        reloader = threading.Thread(target=reload)
        samples: list[tuple[float, dict[int, float]]] = []
        reloader.start()
        while reloader.is_alive():
            samples.append((time.monotonic(), _threads_cpu(pid)))
            time.sleep(SAMPLE_SECONDS)
        reloader.join()
    finally:
        stop.set()
        for thread in clients:
            thread.join()
        router.stop()
    assert reloaded and reloaded[0]["result"] == "reloaded", reloaded
    most, first = 0.0, 0
    for last in range(len(samples)):
        while samples[last][0] - samples[first][0] > 0.04:
            first += 1
        at_first, at_last = samples[first][1], samples[last][1]
        for tid, cpu in at_last.items():
            if tid != pid and tid in at_first:  # (the event loop runs in the main thread)
                most = max(most, cpu - at_first[tid])
    assert most <= 0.04 / 3, f"{most * 1000:.1f} ms of CPU in a 40 ms window"
