"""Fixtures of the operations' tests: the router they share (see `served`), its fake
upstream emptied before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.operations.served import Served


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = Served(tmp_path_factory.mktemp("operations"))
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture(autouse=True)
def _fresh(served: Served) -> None:
    served.upstream.reset()
