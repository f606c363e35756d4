"""The Redis backend against the real Redis on 127.0.0.1:6379 (and a Redis Cluster node).

Both backends run the same algorithms: driven by one clock, they give the same answers.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from router.limits.backends import BackendBroken, BackendDown, BackendRefused, MemoryBackend
from router.limits.policies import CONCURRENT, REQUESTS, TOKENS, Limit, window_limit
from router.testing import RouterProcess, free_port

redis = pytest.importorskip("redis")

from redis import exceptions as rx  # noqa: E402

from router.limits.redis_backend import RedisBackend, classify  # noqa: E402

URL = "redis://127.0.0.1:6379/0"


def _redis_up() -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_timeout=1).ping())
    except redis.RedisError:
        return False


needs_redis = pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex}"
    yield name
    client = redis.Redis(host="127.0.0.1", port=6379)
    keys = list(client.scan_iter(f"{name}:*"))
    if keys:
        client.delete(*keys)


class Clock:
    """Milliseconds the test moves on, and never slower than real time: the expiries Redis
    applies in real time then never come before the ones the test's clock implies."""

    def __init__(self) -> None:
        self.now = self._real = time.monotonic_ns() // 1_000_000
        self.now = int(time.time() * 1000)

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        real = time.monotonic_ns() // 1_000_000
        self.now += ms + real - self._real
        self._real = real


@needs_redis
def test_both_backends_give_the_same_answers(prefix: str) -> None:
    limits = {
        "r": window_limit(REQUESTS, "d", 7, 1_000, 0),
        "R": window_limit(REQUESTS, "d", 1_001, 60_000, 0),
        "t": window_limit(TOKENS, "d", 1_000, 1_000, 0),
        "T": window_limit(TOKENS, "d", 3_000, 10_000, 0),
        "c": Limit(CONCURRENT, "d:c", 3, 0, 0),
    }
    sets = [("R",)] * 6 + [("r",), ("t",), ("T",), ("c",), ("r", "T", "c"), ("R", "t")]

    async def run() -> dict[str, int]:
        clock = Clock()
        memory = MemoryBackend(clock)
        shared = RedisBackend(URL, prefix, 2.0, clock=clock)
        rng = random.Random(11)
        held: list[tuple[tuple[Limit, ...], str, int, int]] = []
        refused = dict.fromkeys(limits, 0)
        try:
            for i in range(5_000):
                clock.advance(rng.choice((0, 0, 1)) if rng.random() > 0.003 else 600)
                if i in (2_500, 3_500):
                    clock.advance(30_000)  # half of R's window leaves it
                names = rng.choice(sets)
                chosen = tuple(limits[name] for name in names)
                cost, lease = rng.randint(1, 100), rng.randint(20, 2_000)
                member = f"m{i}"
                mine = memory.acquire_now(chosen, member, cost, lease)
                theirs = await shared.acquire(chosen, member, cost, lease)
                assert mine == theirs, (i, names)
                if mine.admitted:
                    held.append((chosen, member, cost, mine.at))
                else:
                    for name, used, limit in zip(names, mine.used, chosen, strict=True):
                        need = cost if limit.kind == TOKENS else 1
                        refused[name] += used + need > limit.limit
                if held and rng.random() < 0.4:
                    chosen, member, cost, at = held.pop(rng.randrange(len(held)))
                    actual = rng.choice((None, 0, rng.randint(1, 150)))
                    memory.finish_now(chosen, member, cost, actual, at)
                    await shared.finish(chosen, member, cost, actual, at)
        finally:
            await shared.aclose()
        return refused

    refused = asyncio.run(run())
    assert all(count > 20 for count in refused.values()), refused  # every limit said no


@needs_redis
def test_a_large_limit_holds_the_same_memory_in_redis_whatever_the_traffic(prefix: str) -> None:
    day = (window_limit(REQUESTS, "big", 10**9, 86_400_000, 0),)

    async def run() -> int:
        clock = Clock()
        shared = RedisBackend(URL, prefix, 2.0, clock=clock)
        try:
            for i in range(3_000):  # spread over two days: every sub-window touched
                clock.advance(2 * 86_400_000 // 3_000)
                assert (await shared.acquire(day, f"m{i}", 0, 0)).admitted
            keys = [k async for k in shared.client.scan_iter(f"{prefix}:*")]
            assert len(keys) == 1
            return int(await shared.client.memory_usage(keys[0]))
        finally:
            await shared.aclose()

    assert asyncio.run(run()) < 4_096  # a log would hold an entry per admission: ~200 KB


@needs_redis
def test_many_admissions_at_once_wait_for_a_connection_instead_of_failing(prefix: str) -> None:
    wide = (window_limit(REQUESTS, "wide", 10**6, 60_000, 0),)

    async def run() -> None:
        shared = RedisBackend(URL, prefix, 5.0)
        try:
            calls = [shared.acquire(wide, f"m{i}", 0, 0) for i in range(400)]
            verdicts = await asyncio.gather(*calls)  # more than the pool's connections
            assert all(v.admitted for v in verdicts)
            assert max(v.used[0] for v in verdicts) == 400
        finally:
            await shared.aclose()

    asyncio.run(run())


@needs_redis
def test_a_new_lease_never_shortens_an_older_one(prefix: str) -> None:
    two = (Limit(CONCURRENT, "lease:c", 2, 0, 0),)

    async def run() -> None:
        shared = RedisBackend(URL, prefix, 2.0)
        try:
            assert (await shared.acquire(two, "long", 0, 60_000)).admitted
            assert (await shared.acquire(two, "short", 0, 200)).admitted
            assert await shared.client.pttl(f"{prefix}:rl:lease:c") > 50_000
            deadline = time.monotonic() + 10
            while not (await shared.acquire(two, "next", 0, 60_000)).admitted:
                assert time.monotonic() < deadline, "the short lease never lapsed"
                await asyncio.sleep(0.05)
            assert not (await shared.acquire(two, "over", 0, 60_000)).admitted  # `long` holds
        finally:
            await shared.aclose()

    asyncio.run(run())


@needs_redis
def test_renewal_extends_live_leases_and_reports_lost_ones(prefix: str) -> None:
    one = (Limit(CONCURRENT, "renew:c", 1, 0, 0),)

    async def run() -> None:
        shared = RedisBackend(URL, prefix, 2.0)
        try:
            assert (await shared.acquire(one, "a", 0, 1_000)).admitted
            lost = await shared.renew([("renew:c", "a"), ("renew:c", "gone")], 60_000)
            assert lost == [1]
            assert await shared.client.pttl(f"{prefix}:rl:renew:c") > 50_000
            await asyncio.sleep(1.2)  # past the first lease: the renewed one still holds
            assert not (await shared.acquire(one, "b", 0, 1_000)).admitted
        finally:
            await shared.aclose()

    asyncio.run(run())


def test_errors_are_sorted_into_down_and_broken() -> None:
    down = [
        rx.ConnectionError("Error 111 connecting"),
        rx.TimeoutError("Timeout reading"),
        rx.BusyLoadingError("Redis is loading"),
        rx.ReadOnlyError("You can't write against a read only replica."),
        rx.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        rx.ResponseError("BUSY Redis is busy running a script."),
        OSError("network unreachable"),
    ]
    broken = [
        rx.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        rx.ResponseError("ERR user_script:12: Script attempted to access nonexistent global"),
        rx.NoPermissionError("this user has no permissions to run the 'evalsha' command"),
        rx.AuthenticationError("invalid username-password pair"),
        rx.ClusterCrossSlotError("Keys in request don't hash to the same slot"),
        rx.MovedError("3999 127.0.0.1:6381"),
    ]
    assert all(isinstance(classify(e), BackendDown) for e in down)
    assert all(isinstance(classify(e), BackendBroken) for e in broken)
    assert "Redis Cluster is not supported" in str(classify(broken[4]))


def _cluster_port() -> int:
    """A free port for a cluster node whose bus port (10,000 above it, which Redis binds
    too) is free as well: an ephemeral port above 55,535 has none, and the bus port of
    another may be in use by any connection of a busy test run."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


@pytest.fixture(scope="module")
def cluster_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A one-node Redis Cluster serving every hash slot."""
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server to start a Redis Cluster node")
    tmp_path = tmp_path_factory.mktemp("cluster")
    for _ in range(5):  # a free port may be taken before redis-server binds it: try another
        port = _cluster_port()
        process = subprocess.Popen(
            [
                *("redis-server", "--port", str(port), "--bind", "127.0.0.1"),
                *("--cluster-enabled", "yes"),
                *("--cluster-config-file", str(tmp_path / f"nodes-{port}.conf")),
                *("--dir", str(tmp_path), "--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
        deadline = time.monotonic() + 60  # a loaded machine may be slow to start it
        while process.poll() is None:
            try:
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
                break
            except (redis.ConnectionError, OSError):  # not listening yet
                if time.monotonic() > deadline:
                    process.kill()
                    process.wait(10)
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)
        if process.poll() is None:
            break
    else:
        pytest.fail("could not start a Redis Cluster node")
    try:
        deadline = time.monotonic() + 60
        while client.cluster("info")["cluster_state"] != "ok":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def test_a_redis_cluster_is_refused_and_its_replies_are_errors_not_outages(
    cluster_node: int,
) -> None:
    url = f"redis://127.0.0.1:{cluster_node}/0"

    async def run() -> None:
        shared = RedisBackend(url, "test", 2.0)
        try:
            with pytest.raises(BackendRefused, match=r"server\.rate_limit_backend\.url"):
                await shared.check()
            limits = (window_limit(REQUESTS, "p", 5, 60_000, 0),)
            with pytest.raises(BackendBroken, match=r"CrossSlot.*Redis Cluster is not supported"):
                await shared.acquire(limits, "m", 0, 0)
        finally:
            await shared.aclose()

    asyncio.run(run())


def test_serve_refuses_to_start_on_a_redis_cluster(cluster_node: int, tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(
        "rate_limits:\n"
        "  q: {requests_per_minute: 5}\n"
        "server:\n"
        "  auth: none\n"
        f'  rate_limit_backend: {{url: "redis://127.0.0.1:{cluster_node}/0"}}\n'
        "providers:\n"
        "  up: {plugin: openai, base_url: 'http://127.0.0.1:9/v1', api_key: sk-up}\n"
        "models:\n"
        "  m: {targets: [{provider: up, model: m}], rate_limits: [q]}\n"
    )
    router = RouterProcess(path)
    with pytest.raises(RuntimeError, match="router exited"):
        router.start()
    _, err = router.stop()
    assert b"rate_limit_backend_refused" in err
    assert b"server.rate_limit_backend.url points at a Redis Cluster node" in err


def test_serve_refuses_to_start_when_redis_refuses_its_password(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server")
    port = free_port()
    process = subprocess.Popen(
        [
            *("redis-server", "--port", str(port), "--bind", "127.0.0.1"),
            *("--requirepass", "right-password", "--save", "", "--appendonly", "no"),
            *("--dir", str(tmp_path)),
        ],
        stdout=subprocess.DEVNULL,
    )
    path = tmp_path / "router.yaml"
    path.write_text(
        "rate_limits:\n"
        "  q: {requests_per_minute: 5}\n"
        "server:\n"
        "  auth: none\n"
        f'  rate_limit_backend: {{url: "redis://:wrong-password@127.0.0.1:{port}/0"}}\n'
        "providers:\n"
        "  up: {plugin: openai, base_url: 'http://127.0.0.1:9/v1', api_key: sk-up}\n"
        "models:\n"
        "  m: {targets: [{provider: up, model: m}], rate_limits: [q]}\n"
    )
    try:
        client = redis.Redis(host="127.0.0.1", port=port, password="right-password")
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except (redis.ConnectionError, OSError):  # not listening yet
                assert time.monotonic() < deadline
                time.sleep(0.05)
        router = RouterProcess(path)
        with pytest.raises(RuntimeError, match="router exited"):
            router.start()
        _, err = router.stop()
        assert b"rate_limit_backend_refused" in err
        assert b"server.rate_limit_backend.url: AuthenticationError" in err
        assert b"wrong-password" not in err
    finally:
        process.terminate()
        process.wait(10)
