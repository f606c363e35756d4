"""pytest fixtures: `fake_upstream` and `router_server` (a factory taking YAML text)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from router.testing import closing
from router.testing.fake_upstream import FakeUpstream
from router.testing.openapi import (
    ENV_VAR,
    NoSpecValidator,
    OpenAPIValidator,
    optional_validator,
    spec_path,
)
from router.testing.server import RouterServer


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Closes the clients the test passed to `closed_after_test`, once it has ended."""
    mark = closing.opened()
    yield
    closing.close_since(mark)


@pytest.fixture(scope="session", autouse=True)
def _close_session_clients() -> Iterator[None]:
    """Closes what wider fixtures passed to `closed_after_test`, at the session's end."""
    yield
    closing.close_since(0)


@pytest.fixture
def fake_upstream() -> Iterator[FakeUpstream]:
    """A started fake upstream on loopback; stopped after the test."""
    upstream = FakeUpstream().start()
    try:
        yield upstream
    finally:
        upstream.stop()


RouterFactory = Callable[..., RouterServer]


@pytest.fixture
def router_server(tmp_path: Path) -> Iterator[RouterFactory]:
    """`router_server(yaml_text, environ=None)`: a running router for that config.

    The text is dedented and written to `router.yaml` in the test's temporary folder.
    """
    started: list[RouterServer] = []

    def start(
        config: str, environ: Mapping[str, str] | None = None, name: str = "router.yaml"
    ) -> RouterServer:
        path = tmp_path / name
        path.write_text(textwrap.dedent(config))
        server = RouterServer(path, environ).start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="session")
def openapi() -> OpenAPIValidator | NoSpecValidator:
    """Validates against the official OpenAI description where it is available
    (OPENAI_OPENAPI_SPEC) and checks nothing where it is not: an extra check, never the
    reason a test is skipped."""
    return optional_validator()


@pytest.fixture(scope="session")
def openapi_spec() -> OpenAPIValidator:
    """The validator itself, for a test whose only point is conformance to the description;
    skips, saying why, where the description is not available."""
    path = spec_path()
    if path is None:
        pytest.skip(f"{ENV_VAR} is not set to the OpenAI OpenAPI file; conformance not checked")
    return OpenAPIValidator(path)
