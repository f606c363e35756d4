"""The boundary where the core calls provider plugins' code on the request path.

A provider method that raises something other than a router error (a `KeyError` in a
translation, a `TypeError` in an error mapping) is a bug in the plugin, not an answer from
the upstream. Where the core calls a plugin, such an exception becomes a `PluginError`, a
malformed answer, so the route's failure table decides what happens next as for any failed
attempt (a failure in `get_rate_limit_info`, which only reads an advisory hint, is ignored
instead: the answer stands). Either way it is logged once as `plugin_error` with the
provider, the plugin and the traceback, and counted in
`llm_router_plugin_errors_total{provider, stage}`. A router error a plugin raises on purpose
passes through unchanged.

The calls made once per request or per stream event (`transform_request` through
`build_request`/`plain_request`, `transform_response`, `transform_stream_event`,
`get_rate_limit_info`) are guarded where `router.upstream.relay` makes them, by a try block
that costs nothing until it catches; the rarer ones go through the functions here. The stage
is the provider method the core called (`transform_request` for building the request); a
method the plugin's own code calls from there, such as `get_stream_error` from
`transform_stream_event`, shows in the traceback.
"""

from __future__ import annotations

from typing import Any

from router import errors
from router.observability import logs, metrics
from router.plugins import provider_plugins
from router.upstream.provider import Provider, UpstreamResponse

log = logs.get_logger("router.plugins")


def contained(provider: Provider, stage: str, exc: Exception) -> errors.PluginError:
    """Log and count a plugin's exception; the router error to raise in its place. The
    client's message names the provider and the stage, never the exception's text (it may
    quote a credential or the request); the log has the traceback, with secrets masked."""
    plugin = plugin_name(provider)
    log.error("plugin_error", provider=provider.name, plugin=plugin, stage=stage, exc_info=exc)
    metrics.plugin_errors.add(1, provider.name, stage)
    return errors.PluginError(
        f"provider '{provider.name}' failed in {stage}: a bug in its plugin '{plugin}' "
        "(the router's log has the details)",
        provider=provider.name,
        stage=stage,
    )


def plugin_name(provider: Provider) -> str:
    """The `plugin:` name the provider's class is registered under (looked up on the error
    path only)."""
    cls = type(provider)
    for name, plugin in provider_plugins().items():
        if plugin.provider_class is cls:
            return name
    return f"{cls.__module__}.{cls.__qualname__}"


def upstream_error(provider: Provider, response: UpstreamResponse) -> errors.UpstreamError:
    """`provider.get_error(response)`: the error to raise for a non-2xx answer."""
    try:
        error = provider.get_error(response)
    except errors.RouterError:
        raise
    except Exception as exc:
        return contained(provider, "get_error", exc)
    if not isinstance(error, errors.UpstreamError):
        wrong = TypeError(f"get_error returned {type(error).__name__}, not an UpstreamError")
        return contained(provider, "get_error", wrong)
    return error


def continuation_body(provider: Provider, body: dict[str, Any], partial: str) -> dict[str, Any]:
    """`provider.continuation_body(body, partial)`."""
    try:
        return provider.continuation_body(body, partial)
    except errors.RouterError:
        raise
    except Exception as exc:
        raise contained(provider, "continuation_body", exc) from None
