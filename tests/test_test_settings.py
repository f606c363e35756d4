"""The test settings hide no leak: a socket, client, transport or event loop a test leaves
open fails it, as does an exception in one of its threads."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_resource_warnings_are_errors_not_silenced():
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    filters = settings["ini_options"]["filterwarnings"]
    assert not [f for f in filters if f.startswith("ignore") and "ResourceWarning" in f]
    assert "error::ResourceWarning" in filters
    assert "error::pytest.PytestUnraisableExceptionWarning" in filters
    assert "error::pytest.PytestUnhandledThreadExceptionWarning" in filters


def test_clients_a_test_opens_are_closed_newest_first_when_it_ends():
    from router.testing import closed_after_test
    from router.testing.closing import close_since, opened

    closed: list[str] = []

    class Client:
        def __init__(self, name: str) -> None:
            self.name = name

        def close(self) -> None:
            closed.append(self.name)

    mark = opened()
    first = closed_after_test(Client("first"))
    closed_after_test(Client("second"))
    assert first.name == "first" and closed == []
    close_since(mark)  # what the test kit's autouse fixture does at teardown
    assert closed == ["second", "first"] and opened() == mark


def test_wait_until_returns_as_soon_as_the_condition_holds_and_fails_saying_what():
    import itertools

    import pytest

    from router.testing import wait_until

    calls = itertools.count()
    wait_until(lambda: next(calls) >= 3, "never")  # a few polls, then returns
    with pytest.raises(AssertionError, match="the moon is not up"):
        wait_until(lambda: False, "the moon is not up", timeout=0.05)
