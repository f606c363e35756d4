"""Every secret a config holds, found in one place.

Logs mask these values, upstream error bodies are scrubbed of them, and admin output hides
them; one list keeps the three in step, so a secret added to the config (a credential in a
provider's `headers`, say) cannot be hidden in one place and leak in another.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from urllib.parse import urlsplit

from router.config.models import RouterConfig

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


BACKEND_URL = ("server", "rate_limit_backend", "url")  # a secret: the password in it


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
        case ("server", "rate_limit_backend", "url"):
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


def secret_fields(config: RouterConfig) -> Iterator[tuple[tuple[str, ...], str]]:
    """Each secret of a config with the path of the key that holds it."""
    for name, provider in config.providers.items():
        if provider.api_key is not None:
            yield ("providers", name, "api_key"), provider.api_key.get_secret_value()
        for header, value in provider.headers.items():
            if is_sensitive_header(header):
                yield ("providers", name, "headers", header), value
    for name, key in config.keys.items():
        if key.key is not None:
            yield ("keys", name, "key"), key.key.get_secret_value()
    if config.server.admin_key is not None:
        yield ("server", "admin_key"), config.server.admin_key.get_secret_value()
    url = config.server.rate_limit_backend.url
    password = urlsplit(url).password if url else None
    if password:
        yield BACKEND_URL, password


def config_secrets(config: RouterConfig) -> list[str]:
    """Provider API keys and credential headers, client keys, the admin key and the rate-limit
    backend's password: what must never appear in logs, errors or admin output."""
    out: list[str] = []
    for path, value in secret_fields(config):
        out += _header_secrets(value) if path[2:3] == ("headers",) else [value]
    return [s for s in out if s]
