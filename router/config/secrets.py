"""Every secret a config holds, found in one place.

Logs mask these values, upstream error texts are scrubbed of them
(`router.observability.redaction`), and admin output hides them; one list keeps the three in
step, so a secret added to the config (a credential in a provider's `headers`, say) cannot be
hidden in one place and leak in another.

A secret is: a `SecretStr` field (provider `api_key`, client keys, `server.admin_key`, and
any `SecretStr` field of a plugin's settings), the value of a header whose name says it is a
credential (provider `headers` and header rewrites), the password of a URL (`base_url`, the
Redis URL, the ledger's URL), and every value read from the environment through `${ENV}`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr

from router.checkpoints import checkpoint
from router.config.models import RouterConfig

if TYPE_CHECKING:
    from router.config.loader import SourceMap

Path_ = tuple[str | int, ...]

# Header names whose values are credentials: `Authorization`, `x-goog-api-key`, `X-Auth-Token`...
SENSITIVE_HEADER = re.compile(r"auth|key|token|secret|cookie|password", re.IGNORECASE)


def is_sensitive_header(name: str) -> bool:
    """Whether a configured header's value is to be treated as a secret."""
    return SENSITIVE_HEADER.search(name) is not None


def _header_secrets(value: str) -> list[str]:
    """The value, and its credential without a scheme (`Bearer tok` -> `tok`): logs may show
    either."""
    parts = value.split()
    return [value, parts[-1]] if len(parts) > 1 else [value]


def _url_password(url: str | None) -> str:
    return (urlsplit(url).password or "") if url else ""


def mask_url_password(url: str | None, mask: str) -> str | None:
    """`url` with the password of its user-info, if any, replaced by `mask`."""
    password = _url_password(url)
    if not password or url is None:
        return url
    head, at, host = url.rpartition("@")
    return head.replace(f":{password}", f":{mask}") + at + host


def secret_settings(settings: BaseModel, path: Path_ = ()) -> Iterator[tuple[Path_, str]]:
    """(key path as written, value) of every `SecretStr` field of a plugin's settings,
    nested models included: how a plugin declares a setting to be a secret."""
    for name, info in type(settings).model_fields.items():
        value: Any = getattr(settings, name)
        key = (*path, info.alias or name)
        if isinstance(value, SecretStr):
            yield key, value.get_secret_value()
        elif isinstance(value, BaseModel):
            yield from secret_settings(value, key)


BACKEND_URL = ("server", "rate_limit_backend", "url")  # a secret: the password in it
LEDGER_URL = ("spend", "ledger", "url")  # likewise


def holds_secret(path: Sequence[str | int], text: str = "", at: int = 0) -> bool:
    """Whether the value at `path` is a secret (provider `api_key` and credential `headers`,
    client `keys.*.key`, `server.admin_key`); for the rate-limit backend URL, whether
    position `at` of its `text` lies in the URL's password. Known before the config is
    validated, so that the loader can check `${ENV}` references to secrets."""
    match tuple(path):
        case ("providers", _, "api_key") | ("keys", _, "key") | ("server", "admin_key"):
            return True
        case ("providers", _, "headers", str(name)):
            return is_sensitive_header(name)
        case ("server", "rate_limit_backend", "url") | ("spend", "ledger", "url"):
            return _in_password(text, at)
    return False


def _in_password(url: str, at: int) -> bool:
    """Whether position `at` of `url` is in its password (`scheme://user:PASSWORD@host`)."""
    scheme = url.find("://")
    if scheme < 0:
        return False
    start = scheme + 3
    end = url.find("@", start)
    colon = url.find(":", start, end) if end >= 0 else -1
    return 0 <= colon < at < end


def secret_fields(config: RouterConfig) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Each secret of a config with the path of the key that holds it."""
    for name, provider in config.providers.items():
        if provider.api_key is not None:
            yield ("providers", name, "api_key"), provider.api_key.get_secret_value()
        password = _url_password(provider.base_url)
        if password:
            yield ("providers", name, "base_url"), password
        for header, value in provider.headers.items():
            if is_sensitive_header(header):
                yield ("providers", name, "headers", header), value
    for i, rule in enumerate(config.header_rewrites):
        for action in ("set", "append"):
            for header, value in (getattr(rule, action) or {}).items():
                if is_sensitive_header(header) and "{" not in value:  # not a template
                    yield ("header_rewrites", i, action, header), value
    for name, key in config.keys.items():
        checkpoint()
        if key.key is not None:
            yield ("keys", name, "key"), key.key.get_secret_value()
    if config.server.admin_key is not None:
        yield ("server", "admin_key"), config.server.admin_key.get_secret_value()
    password = _url_password(config.server.rate_limit_backend.url)
    if password:
        yield BACKEND_URL, password
    ledger = config.spend.ledger
    password = _url_password(ledger.url if ledger is not None else None)
    if password:
        yield LEDGER_URL, password


def config_secrets(config: RouterConfig, source: SourceMap | None = None) -> list[str]:
    """Provider API keys, credential headers and URL passwords, client keys, the admin key,
    the rate-limit backend's password and, given the config's source map, every value that
    came from the environment: what must never appear in logs, errors or admin output."""
    out: list[str] = []
    for path, value in secret_fields(config):
        is_header = path[0] == "header_rewrites" or path[2:3] == ("headers",)
        out += _header_secrets(value) if is_header else [value]
    if source is not None:
        out += [value for values in source.from_env.values() for value in values]
    return [s for s in out if s]


def mask_paths(dump: Any, paths: Iterable[Path_], mask: str) -> None:
    """Replace, in a config's JSON dump (by alias: keys as written), the value at each key
    path with `mask`; a path the dump does not hold (a default not written) is skipped."""
    for path in paths:
        node = dump
        try:
            for part in path[:-1]:
                node = node[part]
        except (KeyError, IndexError, TypeError):
            continue
        if _holds(node, path[-1]):
            node[path[-1]] = mask


def _holds(node: Any, key: str | int) -> bool:
    if isinstance(node, dict):
        return key in node
    return isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)
