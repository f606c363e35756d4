"""Configured secrets out of what upstreams write back: error messages, bodies and frames.

Upstreams echo credentials in their errors: the whole key, its sha256 (LiteLLM's "Key Hash"),
or a fragment (`Incorrect API key provided: sk-proj-****...A1gU`, `sk-...A1gU`,
`Received=abcd****wxyz`). A `Redactor` is built once per compiled graph from every secret
its config holds (`router.config.secrets`) and replaces all of those forms with `***`.
It runs on error paths only, where upstream text reaches a client, a log or a trace: a
success body is the model's own words and is never scanned.

Only values of at least `MIN_FREE_TEXT` characters are searched for in free text: a shorter
value (an environment variable holding `1` or `eu`) would mask every occurrence of a common
string; such values are masked only in the config fields that hold them (admin output,
`llm-switchyard explain`).

The helpers at the end give reprs that show no credential, for the objects plugins are handed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

import orjson

from router.checkpoints import checkpoint
from router.errors import RouterError

MASK = "***"
#: Shortest value searched for in free text (logs, error texts). Real credentials are
#: longer; shorter strings (ports, regions, flags) occur everywhere in ordinary text.
MIN_FREE_TEXT = 8
_TAIL = 4  # characters of a key that upstreams show after the masked part

# Key material echoed in the forms upstreams and proxies use, whatever key it is (a LiteLLM
# proxy echoes its own upstream's key, which the router never saw). None of these patterns
# consumes a quote or a backslash, so they are safe on JSON text as well as on messages.
_ECHOES = (
    (re.compile(r"\bsk-[A-Za-z0-9_*\-]*(?:\.+[A-Za-z0-9_*\-]+)*"), "sk-" + MASK),
    (re.compile(r"(Received(?: API Key)?\s*=\s*)[^\s,\"'\\]+"), r"\1" + MASK),
    (re.compile(r"(Key Hash \(Token\)\s*=\s*)[0-9A-Fa-f]+"), r"\1" + MASK),
    (re.compile(r"(API key provided:\s*)[^\s,\"'\\]+?(?=\.?(?:[\s\"'\\]|$))"), r"\1" + MASK),
)


def digests(secret: str) -> list[str]:
    """The forms of `secret`'s sha256 that upstreams print: hex, lower and upper case."""
    hexdigest = hashlib.sha256(secret.encode()).hexdigest()
    return [hexdigest, hexdigest.upper()]


class Redactor:
    """Replaces every configured secret, its digests and its echoed fragments with `***`."""

    __slots__ = ("_fragments", "needles")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = {s for s in secrets if len(s) >= MIN_FREE_TEXT}
        forms = set(values)
        for value in values:
            checkpoint()  # (a big config's thousands of keys: a paced reload may pause here)
            forms.add(orjson.dumps(value).decode()[1:-1])  # as it appears inside JSON text
            forms.update(digests(value))
        #: Whole secrets and their digests, longest first so that none is half-masked.
        self.needles: tuple[str, ...] = tuple(sorted(forms, key=len, reverse=True))
        # A fragment: an optional visible head, a run of `*`, `.` or `…`, then the last
        # characters of one of the secrets (and not more of a word).
        tails = sorted({re.escape(v[-_TAIL:]) for v in values}, key=len, reverse=True)
        self._fragments = (
            re.compile(
                r"[A-Za-z0-9_\-]*(?:[*.\u2026]{3,}|\u2026)(?:"
                + "|".join(tails)
                + r")(?![A-Za-z0-9])"
            )
            if tails
            else None
        )

    def __repr__(self) -> str:
        return f"<Redactor of {len(self.needles)} forms>"

    def text(self, text: str) -> str:
        """`text` with every secret, digest, fragment and echoed key replaced by `***`."""
        for needle in self.needles:
            if needle in text:
                text = text.replace(needle, MASK)
        if self._fragments is not None:
            text = self._fragments.sub(MASK, text)
        for pattern, replacement in _ECHOES:
            text = pattern.sub(replacement, text)
        return text

    def body(self, body: bytes) -> bytes:
        """An error body (JSON or text) as `text` would redact it."""
        decoded = body.decode("utf-8", "surrogateescape")
        redacted = self.text(decoded)
        return body if redacted == decoded else redacted.encode("utf-8", "surrogateescape")

    def scrub(self, error: RouterError) -> None:
        """Redact, in place, every text of `error` that may carry upstream words: its message
        (and so `str(error)`), param, code and headers."""
        error.message = self.text(error.message)
        error.args = (error.message,)
        if error.param:
            error.param = self.text(error.param)
        if error.code:
            code = self.text(error.code)
            if code != error.code:
                error.code = code
        for name, value in error.headers.items():
            error.headers[name] = self.text(value)


# -- what reprs show ----------------------------------------------------------------------------

#: Header names whose values a repr may show: none of them ever carries a credential.
PLAIN_HEADERS = frozenset(
    {"accept", "content-type", "content-length", "user-agent", "x-request-id", "retry-after"}
)


def masked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """`headers` for a repr: names kept, every value masked but those of `PLAIN_HEADERS`
    (any other header may hold a credential, whatever its name)."""
    return {k: v if k.lower() in PLAIN_HEADERS else MASK for k, v in headers.items()}


def masked_url(url: str) -> str:
    """`url` for a repr, without the user-info and query that may hold a credential."""
    parts = urlsplit(url)
    netloc = f"{MASK}@{parts.netloc.rpartition('@')[2]}" if "@" in parts.netloc else parts.netloc
    return urlunsplit((parts.scheme, netloc, parts.path, MASK if parts.query else "", ""))


class MaskedHeaders(dict[str, str]):
    """A plain header dict whose repr never shows a credential (see `masked_headers`): what
    a provider holds its headers in, so logging it, or a traceback with locals, shows none."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(masked_headers(self))
