"""The lease renewer: one batch per round, leases past their request's time let go."""

from __future__ import annotations

import asyncio
import itertools
import time

import structlog

from router.limits.backends import BackendDown
from router.limits.leases import LeaseRenewer


def test_a_round_renews_live_leases_drops_old_and_lost_ones() -> None:
    calls: list[tuple[list[tuple[str, str]], int]] = []
    failures: list[Exception] = []

    async def renew(leases: list[tuple[str, str]], lease_ms: int) -> list[int]:
        calls.append((leases, lease_ms))
        return [i for i, (_, member) in enumerate(leases) if member == "lost"]

    async def run() -> LeaseRenewer:
        renewer = LeaseRenewer(renew, 30_000, failures.append)
        now = time.monotonic()
        renewer.hold("live", ("a:c", "b:c"), now + 60)
        renewer.hold("lost", ("a:c",), now + 60)
        renewer.hold("past", ("a:c",), now - 1)  # its request's deadline and margin are over
        renewer.hold("done", ("a:c",), now + 60)
        renewer.drop("done")
        with structlog.testing.capture_logs() as logged:
            await renewer.renew_now()
        assert [e["event"] for e in logged] == ["rate_limit_leases_lost"]
        await renewer.aclose()
        return renewer

    renewer = asyncio.run(run())
    assert calls == [([("a:c", "live"), ("b:c", "live"), ("a:c", "lost")], 30_000)]
    assert list(renewer.live) == ["live"]
    assert failures == []


def test_a_failed_round_is_reported_and_the_leases_kept() -> None:
    failures: list[Exception] = []

    async def renew(leases: list[tuple[str, str]], lease_ms: int) -> list[int]:
        raise BackendDown("ConnectionError: refused")

    async def run() -> LeaseRenewer:
        renewer = LeaseRenewer(renew, 30_000, failures.append)
        renewer.hold("live", ("a:c",), time.monotonic() + 60)
        await renewer.renew_now()
        await renewer.aclose()
        return renewer

    renewer = asyncio.run(run())
    assert [str(f) for f in failures] == ["ConnectionError: refused"]
    assert list(renewer.live) == ["live"]  # tried again next round


def test_renewal_runs_every_third_of_the_lease() -> None:
    rounds: list[float] = []

    async def renew(leases: list[tuple[str, str]], lease_ms: int) -> list[int]:
        rounds.append(time.monotonic())
        return []

    async def run() -> None:
        renewer = LeaseRenewer(renew, 300, lambda exc: None)
        renewer.hold("live", ("a:c",), time.monotonic() + 60)
        deadline = time.monotonic() + 10
        while len(rounds) < 3:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        await renewer.aclose()

    asyncio.run(run())
    assert all(b - a >= 0.09 for a, b in itertools.pairwise(rounds))
