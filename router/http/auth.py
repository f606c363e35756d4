"""Client authentication: `Authorization: Bearer <key>` or `x-api-key: <key>`.

Keys are known only by their sha256 digest. The presented key is hashed, looked up by
digest, and the digests are compared with `hmac.compare_digest`, so neither the lookup nor
the comparison leaks anything about a configured key through timing.

A key that passed is remembered by the graph, so its next requests skip the hashing (on an
idle core, OpenSSL's sha256 path cost about 45 us of a request's 1 ms). Only keys that
passed are kept, so the table holds at most one entry per configured key; and a look-up
there compares strings only after their salted hashes matched, which a guess cannot aim
at, so it tells a guess no more than the digest look-up does.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from router import errors
from router.types import ClientKey, RoutingGraph


def presented_key(headers: Mapping[str, str]) -> str | None:
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    key = headers.get("x-api-key")
    return key.strip() if key else None


def authenticate(graph: RoutingGraph, headers: Mapping[str, str]) -> ClientKey:
    if graph.anonymous is not None:
        return graph.anonymous
    token = presented_key(headers)
    if token is None:
        raise errors.AuthenticationFailed(
            "missing API key: send `Authorization: Bearer <key>` or `x-api-key: <key>`",
            code="missing_api_key",
        )
    key = graph.verified.get(token)
    if key is not None:
        return key
    digest = hashlib.sha256(token.encode()).digest()
    key = graph.keys.get(digest)
    if key is None or not hmac.compare_digest(key.digest, digest):
        raise errors.AuthenticationFailed("invalid API key")
    graph.verified[token] = key
    return key
