"""Declarative header rewrites, compiled at load time and applied to each request and answer.

Order, for headers sent upstream: the provider's own headers (credentials included), then
`x-request-id`, then the allow-listed client headers (`server.forward_client_headers`), then
the rules of scope global, provider, model and key, each scope in file order. For headers
returned to the client: the router's headers (`x-request-id`, `x-router-*`,
`x-ratelimit-*`), then the response rules in the same scope order. A later rule sees what
earlier ones did, so the most specific scope wins.

Safety is checked at load, so that no request can get around it: names and values must be
valid HTTP (no CR, LF or other control characters); hop-by-hop and framing headers and
`x-request-id` cannot be touched; request rules cannot touch any provider's credential
header, and neither can the client allow-list, so client input never reaches a credential.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from router.config.loader import ConfigIssue, SourceMap, did_you_mean
from router.config.models import RouterConfig
from router.config.policies import HeaderRewriteConfig
from router.config.secrets import is_sensitive_header
from router.observability import logs
from router.operations import registered
from router.types import Operation

if TYPE_CHECKING:
    import httpx

    from router.types import ProviderRuntime, RoutingGraph
    from router.upstream.provider import PlainRequest

PLACEHOLDERS = ("key", "request_id", "model", "provider", "upstream_model")
HOP_BY_HOP = frozenset(
    [
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    ]
)
ROUTER_OWNED = frozenset({"x-request-id"})
CREDENTIALS = frozenset({"authorization", "x-api-key", "api-key"})
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_VALUE = re.compile(r"^[\t\x20-\x7e]*$")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_UNSAFE = {c: None for c in range(32) if c != 9} | {127: None}

Template = tuple[tuple[bool, str], ...]  # (is_placeholder, text) parts


@dataclass(frozen=True, slots=True)
class Rule:
    """One action over (name, argument) pairs; the argument is a template, a name or None."""

    action: str  # set, append, remove, rename, copy
    pairs: tuple[tuple[str, Any], ...]
    from_env: frozenset[str] = frozenset()  # names whose value came from `${ENV}`: secrets


Rules = tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class Scoped:
    everywhere: Rules
    provider: Mapping[str, Rules]
    model: Mapping[str, Rules]
    key: Mapping[str, Rules]
    active: bool = field(init=False)  # any rule at all: decided once, read per request

    def __post_init__(self) -> None:
        active = bool(self.everywhere or self.provider or self.model or self.key)
        object.__setattr__(self, "active", active)

    def chain(self, provider: str, model: str, key: str) -> Iterable[Rule]:
        yield from self.everywhere
        yield from self.provider.get(provider, ())
        yield from self.model.get(model, ())
        yield from self.key.get(key, ())


@dataclass(frozen=True, slots=True)
class HeaderRules:
    request: Scoped
    response: Scoped
    forward: tuple[str, ...]  # client headers allowed upstream

    @staticmethod
    def empty() -> HeaderRules:
        none = Scoped((), {}, {}, {})
        return HeaderRules(none, none, ())


def render(template: Template, values: Mapping[str, str]) -> str:
    if len(template) == 1 and not template[0][0]:
        return template[0][1]
    out = []
    for is_placeholder, text in template:
        out.append(values.get(text, "").translate(_UNSAFE) if is_placeholder else text)
    return "".join(out)


def apply(rules: Iterable[Rule], headers: Any, values: Mapping[str, str]) -> None:
    """Run rules over a case-insensitive header mapping (httpx or Starlette headers)."""
    for rule in rules:
        for name, arg in rule.pairs:
            if rule.action == "set":
                headers[name] = render(arg, values)
            elif rule.action == "append":
                value = render(arg, values)
                old = headers.get(name)
                headers[name] = f"{old}, {value}" if old else value
            elif rule.action == "remove":
                if name in headers:
                    del headers[name]
            elif name in headers:  # rename or copy
                value = headers[name]
                if rule.action == "rename":
                    del headers[name]
                headers[arg] = value


def request_values(
    key: str, request_id: str, model: str, provider: str = "", upstream_model: str = ""
) -> dict[str, str]:
    return {
        "key": key,
        "request_id": request_id,
        "model": model,
        "provider": provider,
        "upstream_model": upstream_model,
    }


def prepare_request(
    graph: RoutingGraph,
    request: httpx.Request | PlainRequest,
    provider: str,
    upstream_model: str,
    key: str,
    model: str,
    request_id: str,
    client_headers: Mapping[str, str] | None,
) -> None:
    """The headers an upstream request leaves with; see the module docstring for the order."""
    rules = graph.rewrites
    headers = request.headers
    headers["x-request-id"] = request_id
    if client_headers is not None:
        for name in rules.forward:
            value = client_headers.get(name)
            if value is not None:
                headers[name] = value
    if rules.request.active:
        values = request_values(key, request_id, model, provider, upstream_model)
        apply(rules.request.chain(provider, model, key), headers, values)


def explain_request_headers(
    graph: RoutingGraph, model: str, key: str = "anonymous"
) -> dict[str, dict[str, str]]:
    """For `llm-switchyard explain`: per target of `model`, the headers a request would send,
    with credentials, values from `${ENV}` and configured secrets masked, and
    `{request_id}` left as a marker."""
    route = graph.routes[model]
    out: dict[str, dict[str, str]] = {}
    for target in route.targets:
        provider = target.provider
        op = next((o for o in registered() if o in provider.operations), Operation.CHAT)
        request = provider.build_request(op, {"model": model, "messages": []}, target.model)
        prepare_request(
            graph, request, target.runtime.name, target.model, key, model, "<request-id>", None
        )
        hidden = CREDENTIALS | {n.lower() for n in provider.auth_headers()}
        hidden |= _from_env(graph, target.runtime.name, model, key)
        masked = {}
        for name, value in request.headers.items():
            if name in hidden or is_sensitive_header(name):
                value = logs.MASK
            masked[name] = graph.redactor.text(value)
        out[target.label] = masked
    return out


def _from_env(graph: RoutingGraph, provider: str, model: str, key: str) -> set[str]:
    """The headers a request to `provider` carries with a value from `${ENV}`: the provider's
    own, then those request rules set, followed through renames and copies."""
    names = {
        str(path[3]).lower()
        for path in graph.from_env
        if path[:3] == ("providers", provider, "headers") and len(path) == 4
    }
    for rule in graph.rewrites.request.chain(provider, model, key):
        for name, arg in rule.pairs:
            if rule.action in ("set", "append"):
                if name in rule.from_env:
                    names.add(name)
                elif rule.action == "set":
                    names.discard(name)
            elif rule.action == "remove":
                names.discard(name)
            elif name in names:  # rename or copy
                names.add(arg)
                if rule.action == "rename":
                    names.discard(name)
    return names


# -- compiling ------------------------------------------------------------------------------


def _template(
    value: str, path: tuple[str | int, ...], source: SourceMap, issues: list[ConfigIssue]
) -> Template:
    parts: list[tuple[bool, str]] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(value):
        parts.append((False, value[pos : match.start()]))
        pos = match.end()
        if match.group(1) is None:
            parts.append((False, match.group(0)[0]))
        elif match.group(1) in PLACEHOLDERS:
            parts.append((True, match.group(1)))
        else:
            name = match.group(1)
            issues.append(
                source.issue(
                    path,
                    f"unknown placeholder '{{{name}}}'{did_you_mean(name, PLACEHOLDERS)}; "
                    f"known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}",
                )
            )
    parts.append((False, value[pos:]))
    merged: list[tuple[bool, str]] = []
    for part in parts:
        if merged and not part[0] and not merged[-1][0]:
            merged[-1] = (False, merged[-1][1] + part[1])
        elif part != (False, ""):
            merged.append(part)
    return tuple(merged) or ((False, ""),)


def _check_name(
    name: str,
    forbidden: frozenset[str],
    path: tuple[str | int, ...],
    source: SourceMap,
    issues: list[ConfigIssue],
) -> str:
    lower = name.lower()
    if not _TOKEN.match(name):
        issues.append(source.issue(path, f"'{name!r}' is not a valid header name"))
    elif lower in HOP_BY_HOP:
        issues.append(source.issue(path, f"'{lower}' is a hop-by-hop or framing header"))
    elif lower in ROUTER_OWNED:
        issues.append(source.issue(path, f"'{lower}' is set by the router (copy it instead)"))
    elif lower in forbidden:
        issues.append(
            source.issue(path, f"'{lower}' carries an upstream credential: set `api_key` instead")
        )
    return lower


def _rule(
    spec: HeaderRewriteConfig,
    path: tuple[str | int, ...],
    credentials: frozenset[str],
    source: SourceMap,
    issues: list[ConfigIssue],
) -> Rule:
    forbidden = credentials if spec.direction == "request" else frozenset()
    owned_ok = forbidden | HOP_BY_HOP  # copy may read x-request-id, nothing else router-owned

    def name(n: str, where: tuple[str | int, ...], reading: bool = False) -> str:
        if reading and n.lower() in ROUTER_OWNED:
            return n.lower()
        return _check_name(n, owned_ok if reading else forbidden, where, source, issues)

    if spec.remove is not None:
        removals = tuple((name(n, (*path, "remove", i)), None) for i, n in enumerate(spec.remove))
        return Rule("remove", removals)
    for action in ("set", "append"):
        mapping = getattr(spec, action)
        if mapping is not None:
            out = []
            env = source.from_env
            from_env = frozenset(n.lower() for n in mapping if (*path, action, n) in env)
            for n, value in mapping.items():
                where = (*path, action, n)
                if not _VALUE.match(value):
                    issues.append(
                        source.issue(
                            where,
                            "value contains CR, LF or another character not allowed in a header",
                        )
                    )
                out.append((name(n, where), _template(value, where, source, issues)))
            return Rule(action, tuple(out), from_env)
    action, mapping = ("rename", spec.rename) if spec.rename is not None else ("copy", spec.copy_)
    assert mapping is not None
    pairs: tuple[tuple[str, Any], ...] = tuple(
        (
            name(old, (*path, action, old), reading=action == "copy"),
            name(new, (*path, action, old)),
        )
        for old, new in mapping.items()
    )
    return Rule(action, pairs)


def compile_rewrites(
    config: RouterConfig,
    source: SourceMap,
    issues: list[ConfigIssue],
    runtimes: Mapping[str, ProviderRuntime],
) -> HeaderRules:
    """Check every rule and sort it into per-scope tuples."""
    credentials = CREDENTIALS | {
        n.lower() for r in runtimes.values() for n in r.provider.auth_headers()
    }
    known: dict[str, Mapping[str, object]] = {
        "provider": config.providers,
        "model": config.models,
        "key": config.keys,
    }
    buckets: dict[str, dict[str, dict[str, list[Rule]]]] = {
        d: {s: {} for s in ("global", "provider", "model", "key")} for d in ("request", "response")
    }
    for i, spec in enumerate(config.header_rewrites):
        path: tuple[str | int, ...] = ("header_rewrites", i)
        target = spec.name or ""
        if spec.scope != "global" and target not in known[spec.scope]:
            hint = did_you_mean(target, known[spec.scope])
            issues.append(source.issue((*path, "name"), f"unknown {spec.scope} '{target}'{hint}"))
            continue
        rule = _rule(spec, path, credentials, source, issues)
        buckets[spec.direction][spec.scope].setdefault(target, []).append(rule)
    forward = []
    for i, header in enumerate(config.server.forward_client_headers):
        where = ("server", "forward_client_headers", i)
        lower = _check_name(header, credentials | {"content-type"}, where, source, issues)
        forward.append(lower)

    def scoped(direction: str) -> Scoped:
        b = buckets[direction]
        return Scoped(
            tuple(b["global"].get("", ())),
            {k: tuple(v) for k, v in b["provider"].items()},
            {k: tuple(v) for k, v in b["model"].items()},
            {k: tuple(v) for k, v in b["key"].items()},
        )

    return HeaderRules(scoped("request"), scoped("response"), tuple(forward))
