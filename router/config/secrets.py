"""Every secret a config holds, found in one place.

Logs mask these values, upstream error bodies are scrubbed of them, and admin output hides
them; one list keeps the three in step, so a secret added to the config (a credential in a
provider's `headers`, say) cannot be hidden in one place and leak in another.
"""

from __future__ import annotations

import re
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


def config_secrets(config: RouterConfig) -> list[str]:
    """Provider API keys and credential headers, client keys, the admin key and the rate-limit
    backend's password: what must never appear in logs, errors or admin output."""
    out: list[str] = []
    for provider in config.providers.values():
        if provider.api_key is not None:
            out.append(provider.api_key.get_secret_value())
        for name, value in provider.headers.items():
            if is_sensitive_header(name):
                out += _header_secrets(value)
    out += [k.key.get_secret_value() for k in config.keys.values() if k.key is not None]
    if config.server.admin_key is not None:
        out.append(config.server.admin_key.get_secret_value())
    url = config.server.rate_limit_backend.url
    if url:
        password = urlsplit(url).password
        if password:
            out.append(password)
    return [s for s in out if s]
