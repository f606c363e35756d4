"""Reading a config file into a compiled graph: its bytes read once, hashed, parsed,
validated and compiled."""

from __future__ import annotations

import contextlib
import gc
import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path

from router.config.loader import ConfigError, ConfigIssue, parse_config
from router.graph.compile import compile_graph
from router.graph.shared_setting import SharedSetting
from router.types import RoutingGraph

YOUNG_ONLY = 1_000_000_000  # an older generation's threshold that a load never reaches


_thresholds = SharedSetting(gc.get_threshold, lambda values: gc.set_threshold(*values))


@contextlib.contextmanager
def young_collections_only() -> Iterator[None]:
    """Only young collections while a config loads: a load makes no cyclic garbage, but
    hundreds of thousands of objects that the older generations' collections would walk
    again and again (for 10,000 keys: 9 full collections, 0.49 s of a 1.26 s load)."""
    with _thresholds.changed(lambda found: (found[0], YOUNG_ONLY, YOUNG_ONLY)):
        yield


def file_hash(data: bytes) -> str:
    """The config's identity, as `/health` and `/admin/config` report it: the sha256 of the
    file's bytes, so an operator can compare it with `sha256sum` of what they deployed."""
    return hashlib.sha256(data).hexdigest()


def graph_from_bytes(
    data: bytes, path: str, environ: Mapping[str, str] | None = None
) -> RoutingGraph:
    """Parse, validate and compile a config file's bytes, read once, so the graph's
    `config_hash` is the hash of exactly what was compiled."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigIssue(path, None, "", f"not UTF-8: {exc}")]) from None
    loaded = parse_config(text, path, environ)
    return compile_graph(
        loaded.config, loaded.source, file_hash(data), loaded.issues, loaded.replaced
    )


def load_graph(path: str | Path, environ: Mapping[str, str] | None = None) -> RoutingGraph:
    """Load, validate and compile a config file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        issue = ConfigIssue(str(path), None, "", f"cannot read: {exc.strerror}")
        raise ConfigError([issue]) from None
    return graph_from_bytes(data, str(path), environ)


_handed: tuple[Path, RoutingGraph] | None = None  # see `hand_over`


def hand_over(path: str | Path, graph: RoutingGraph) -> None:
    """Keep `graph`, compiled from `path`, for the next `load_graph_once` of that file in this
    process: `llm-switchyard serve` compiles the config to fail fast, then the app's factory
    would compile it again (a 10,000-key config's start-up took twice its compile)."""
    global _handed
    _handed = (Path(path).absolute(), graph)


def load_graph_once(path: str | Path) -> RoutingGraph:
    """The graph `hand_over` kept for `path` if the file's bytes are still the ones it was
    compiled from (taken once), else `load_graph(path)`."""
    global _handed
    handed, _handed = _handed, None
    if handed is not None and handed[0] == Path(path).absolute():
        try:
            data = Path(path).read_bytes()
        except OSError:
            data = b""
        if handed[1].config_hash and file_hash(data) == handed[1].config_hash:
            return handed[1]
    return load_graph(path)
