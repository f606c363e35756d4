"""structlog set-up: JSON lines for machines, a readable console format for people.

Secrets never reach a log line: the last processor replaces every configured secret (provider
API keys, client keys, values from `${ENV}`; see `router.observability.redaction` for which)
and its sha256 digests wherever they appear, whatever the event. The access log line, written
on every request from fields the router itself fills, is searched for the secrets only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

import orjson
import structlog
import structlog.contextvars

from router.observability.needles import Needles
from router.observability.redaction import MASK as MASK  # (re-exported: what every mask reads as)
from router.observability.redaction import MIN_FREE_TEXT, digests

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_secrets: Needles[str] = Needles(set())  # secrets and their digests
_rendered_secrets: Needles[bytes] = Needles(set())  # each secret as it appears in a JSON line
_rendered_all: Needles[bytes] = Needles(set())  # ... and their digests
# The JSON-bytes set-up `configure` installed: (its processor list, that list's length, the
# stream it writes to), for `info_line`; None in any other format.
_json_sink: tuple[list[Any], int, Any] | None = None
_flush_scheduled: Any = None  # the event loop a flush is pending in
# Whether info lines (the access log) are written: asked once per request, so a plain flag
# set by `configure` rather than a call through structlog's lazy logger proxy.
info_enabled = True
_second = -1  # the wall-clock second `_second_text` spells, for `timestamp`
_second_text = ""


Masks = tuple[Needles[str], Needles[bytes], Needles[bytes]]
_prepared: tuple[tuple[str, ...], Masks] | None = None  # the last `prepare_secrets`


def prepare_secrets(secrets: Sequence[str]) -> Masks:
    """What `register_secrets` installs for `secrets`, built now and kept for it: a reload
    calls this in its worker thread, so that the swap on the event loop finds it ready (10,000
    secrets take a third of a second to hash and index)."""
    global _prepared
    given = tuple(secrets)
    if _prepared is not None and _prepared[0] == given:
        return _prepared[1]
    values = {s for s in given if len(s) >= MIN_FREE_TEXT}
    hashes = {d for s in values for d in digests(s)}
    forms = {f for s in values for f in (s.encode(), orjson.dumps(s)[1:-1])}
    masks = (
        Needles(values | hashes),
        Needles(forms),
        Needles(forms | {d.encode() for d in hashes}),
    )
    _prepared = (given, masks)
    return masks


def register_secrets(secrets: Sequence[str]) -> None:
    """Secrets of the active config (those long enough to search free text for); longest
    first so that none is half-masked."""
    global _secrets, _rendered_secrets, _rendered_all
    _secrets, _rendered_secrets, _rendered_all = prepare_secrets(secrets)


def mask(text: str) -> str:
    return _secrets.replace(text, MASK)


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: _mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(v) for v in value]
    return value


def _mask_secrets(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    if _secrets:
        return {k: _mask_value(v) for k, v in event.items()}
    return event


def _mask_rendered(_: Any, __: str, line: bytes) -> bytes:
    """Mask secrets and digests in the finished JSON line: one search per needle, not a walk
    per field."""
    return _masked(line, _rendered_all)


def _masked(line: bytes, needles: Needles[bytes]) -> bytes:
    return needles.replace(line, b"***")


def _orjson_dumps(event: dict[str, Any], **_: Any) -> str:
    return orjson.dumps(event, default=str).decode()


def _orjson_bytes(event: dict[str, Any], **_: Any) -> bytes:
    return orjson.dumps(event, default=str)


def configure(level: str = "info", fmt: str = "json") -> None:
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    global _json_sink, info_enabled
    _json_sink = None
    info_enabled = _LEVELS[level] <= logging.INFO
    stream = getattr(sys.stderr, "buffer", None)
    factory: Any
    if fmt == "json" and stream is not None:
        # The hot-path format: bytes straight from orjson to the stream, masked as a whole.
        processors += [structlog.processors.JSONRenderer(serializer=_orjson_bytes), _mask_rendered]
        factory = structlog.BytesLoggerFactory(stream)
        _json_sink = (processors, len(processors), stream)
    else:
        renderer: Any
        if fmt == "console":
            renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        else:
            renderer = structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        processors += [_mask_secrets, renderer]
        factory = structlog.PrintLoggerFactory(sys.stderr)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )


def info_line(logger: Any, event: str, fields: dict[str, Any]) -> None:
    """`logger.info(event, **fields)` for the access log: the same JSON line, written
    without structlog's dispatch (a third of its cost) when the JSON format of `configure`
    is the active one and no context variables are bound; otherwise through `logger`.
    Takes `fields` over. The caller has checked that info is enabled."""
    sink = _json_sink
    if (
        sink is None
        or structlog.get_config()["processors"] is not sink[0]  # reconfigured since
        or _reconfigured(sink[0], sink[1])
        or structlog.contextvars.get_contextvars()  # bound: let structlog merge them
    ):
        logger.info(event, **fields)
        return
    fields["event"] = event
    fields["level"] = "info"
    fields["timestamp"] = timestamp()
    stream = sink[2]
    # The router's own fields: no upstream text reaches them unscrubbed
    # (`router.observability.redaction`), so whole secrets are searched for, not their
    # digests (a third of the searches).
    stream.write(_masked(orjson.dumps(fields, default=str), _rendered_secrets) + b"\n")
    _flush_soon(stream)


def _reconfigured(ours: list[Any], length: int) -> bool:
    """Our processor list was edited in place since `configure` (as `capture_logs` does):
    the direct line would bypass the new set-up."""
    return len(ours) != length or ours[-1] is not _mask_rendered


def timestamp() -> str:
    """Now, as structlog's ISO timestamp (UTC, microseconds, `Z`), with the date and time
    of day formatted once per second rather than once per line."""
    global _second, _second_text
    now = time.time()
    second = int(now)
    if second != _second:
        _second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second = second
    return f"{_second_text}.{str(1_000_000 + int((now - second) * 1_000_000))[1:]}Z"


def _flush_soon(stream: Any) -> None:
    """Flush at the end of this event-loop iteration: one write for all the lines of the
    requests that finished in it, not a system call per line (a line is never held longer
    than the iteration that wrote it)."""
    global _flush_scheduled
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        stream.flush()
        return
    if _flush_scheduled is loop:
        return
    _flush_scheduled = loop  # (a loop that stopped before its flush ran is not waited for)
    loop.call_soon(_flush, stream)


def _flush(stream: Any) -> None:
    global _flush_scheduled
    _flush_scheduled = None
    with contextlib.suppress(OSError, ValueError):  # stderr closed: nobody left to tell
        stream.flush()


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
