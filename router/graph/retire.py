"""Replaced graphs freed a batch of entries at a time, once nothing uses them.

A graph is freed when its last reference goes, in one cascade of C deallocations that no
thread interrupts: 40-50 ms for a config of 10,000 keys, on the event loop, where a reload
swaps graphs or the last request still running on the old graph ends. `Retiring` holds the
graphs a reload replaced instead. Once nothing else holds one (reference counts say so: every
request that ran on it has ended), it lets go of all but the graph's large mappings, then,
after a turn of the event loop, empties those `BATCH` entries at a time, the event loop
serving between two batches.

Only what the retired graph alone holds is emptied: a mapping, or an object of the graph
holding mappings (its config, its limit and budget tables), that anything else still refers
to (the config the router started with, say, kept to compare settings) is left whole, and
goes by reference counting as before. A graph still held when its grace runs out (a cycle
keeps it, or a request outlives every timeout) is let go to reference counting and the
collector too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
import time
from typing import Any

from router.types import RoutingGraph

POLL_SECONDS = 1.0  # how often held graphs are looked at
BATCH = 256  # entries freed between two turns of the event loop
LARGE = 2 * BATCH  # mappings smaller than this go with the rest of the graph
# References to an object that only its owner holds, as `sys.getrefcount` counts them there:
# the owner's, the caller's variable and the call's argument.
_ALONE = 3


def _attribute_names(owner: object) -> list[str]:
    """The fields of a dataclass or a pydantic model; none for anything else."""
    if dataclasses.is_dataclass(owner):
        return [field.name for field in dataclasses.fields(owner)]
    fields = getattr(type(owner), "model_fields", None)
    return list(fields) if isinstance(fields, dict) else []


def _only_held_by(owner: object, name: str) -> Any:
    """`owner.name` if `owner` alone refers to it, else None."""
    value = getattr(owner, name, None)
    return value if value is not None and sys.getrefcount(value) == _ALONE else None


def large_mappings(graph: RoutingGraph) -> list[dict[Any, Any]]:
    """The mappings of `graph` with `LARGE` entries or more that it alone holds: its own, and
    those of the objects it alone holds. (Call it only for a graph nothing else holds.)"""
    owners: list[object] = [graph]
    for name in _attribute_names(graph):
        value = _only_held_by(graph, name)
        if value is not None and type(value) is not dict and _attribute_names(value):
            owners.append(value)
    found = []
    for owner in owners:
        for name in _attribute_names(owner):
            value = _only_held_by(owner, name)
            if type(value) is dict and len(value) >= LARGE:
                found.append(value)
    return found


async def empty_gradually(mappings: list[dict[Any, Any]]) -> None:
    """Empty each mapping `BATCH` entries at a time, yielding to the event loop between."""
    for mapping in mappings:
        while mapping:
            for _ in range(min(BATCH, len(mapping))):
                mapping.popitem()
            await asyncio.sleep(0)


class Retiring:
    """Graphs replaced by reloads, each freed once nothing else holds it (see the module)."""

    def __init__(self) -> None:
        self._graphs: list[tuple[RoutingGraph, float]] = []  # (graph, when to give up)
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._graphs)

    def busy(self) -> bool:
        """Whether graphs are held or being emptied."""
        return self._task is not None and not self._task.done()

    def add(self, graph: RoutingGraph, grace: float) -> None:
        """Hold `graph` until nothing else does, or for `grace` seconds at most."""
        self._graphs.append((graph, time.monotonic() + grace))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self._graphs:
            await asyncio.sleep(POLL_SECONDS)
            now = time.monotonic()
            for i in reversed(range(len(self._graphs))):  # (`add` appends meanwhile)
                if i >= len(self._graphs):  # (`stop` cleared it)
                    return
                held, until = self._graphs[i]
                # References: the list's tuple, `held` here, and the call's argument.
                if sys.getrefcount(held) == _ALONE:
                    mappings = large_mappings(held)
                    del self._graphs[i], held  # the rest goes now (2-3 ms at 10,000 keys),
                    await asyncio.sleep(0)  # a turn of the loop of its own
                    await empty_gradually(mappings)
                elif now >= until:
                    del self._graphs[i]

    async def stop(self) -> None:
        """Forget every held graph (the process is stopping)."""
        self._graphs.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
