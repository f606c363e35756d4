"""One `llm-switchyard serve` per test module, on the module's `CONFIG` (formatted with the
fake upstream's `url`), a fake upstream reset around each test, and an openai client."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import openai
import pytest

from router.testing import FakeUpstream, RouterProcess


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(scope="module")
def router(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream
) -> Iterator[RouterProcess]:
    path = tmp_path_factory.mktemp("rescue") / "router.yaml"
    path.write_text(textwrap.dedent(request.module.CONFIG.format(url=upstream.url)))
    with RouterProcess(path) as served:
        yield served


@pytest.fixture
def fake(upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    upstream.reset()
    yield upstream
    upstream.reset()


@pytest.fixture
def client(router: RouterProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0, timeout=30) as c:
        yield c
