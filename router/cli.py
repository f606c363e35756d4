"""`llm-switchyard`: serve, check, explain, usage, schema, plugins."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from router.config import ConfigError

if TYPE_CHECKING:
    from router.types import RoutingGraph

SCHEMA_PATH = Path("schema/router.schema.json")


def _load(path: str, strict: bool = False) -> RoutingGraph | None:
    """The compiled graph, or None after printing the file:line:key errors; with `strict`,
    warnings are errors too (as the config's own `server.strict_config` makes them)."""
    from router.graph.load import load_graph, young_collections_only

    try:
        with young_collections_only():
            graph = load_graph(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None
    if strict and graph.warnings:
        print(ConfigError([w.as_error("with --strict") for w in graph.warnings]), file=sys.stderr)
        return None
    return graph


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from router.config.settings import Settings
    from router.http.serving import uvicorn_options

    settings = Settings()
    config = args.config or settings.config
    if not config:
        print("error: give --config PATH or set LLM_ROUTER_CONFIG", file=sys.stderr)
        return 2
    graph = _load(config)  # fail fast, before uvicorn starts, with file:line errors
    if graph is None:
        return 1
    # Absolute, but not resolved: the reloader follows the links at every check, so a
    # ConfigMap's `..data` swap is seen; a resolved path names a directory kubelet deletes.
    os.environ["LLM_ROUTER_CONFIG"] = str(Path(config).absolute())
    host = args.host or settings.host or graph.config.server.host
    port = args.port or settings.port or graph.config.server.port
    workers = args.workers or settings.workers
    from router.limits.policies import unshared_limits

    problem = unshared_limits(graph.config, graph.limits, workers, graph.budgets.attached)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    os.environ["LLM_ROUTER_WORKERS"] = str(workers)  # each worker checks its reloads too
    if workers <= 1:  # the app is made in this process: it takes this graph, not a new one
        from router.graph.load import hand_over

        hand_over(config, graph)
    uvicorn.run(
        "router.http.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        **uvicorn_options(),
    )
    return 0


def _check(args: argparse.Namespace) -> int:
    if (args.path is None) == (args.config is None):
        print("error: give the config file, as PATH or as --config PATH", file=sys.stderr)
        return 2
    args.config = args.config or args.path
    graph = _load(args.config, args.strict)
    if graph is None:
        return 1
    for warning in graph.warnings:
        print(warning, file=sys.stderr)
    count = len(graph.warnings)
    print(f"{args.config}: OK" + (f", {count} warning{'s' * (count > 1)}" if count else ""))
    print(f"providers ({len(graph.providers)}):")
    for name, runtime in graph.providers.items():
        print(
            f"  {name}: plugin {graph.config.providers[name].plugin}, {runtime.provider.base_url}"
        )
    print(f"models ({len(graph.routes)}):")
    for name, route in graph.routes.items():
        targets = ", ".join(t.label for t in route.targets)
        extra = f"; fallbacks: {', '.join(route.fallbacks)}" if route.fallbacks else ""
        print(f"  {name}: {route.strategy.__name__} over {targets}{extra}")
    auth = "none" if graph.anonymous else f"{len(graph.keys)} key(s)"
    print(f"auth: {auth}")
    return 0


def _explain(args: argparse.Namespace) -> int:
    from router.config.loader import did_you_mean
    from router.graph.explain import explain

    graph = _load(args.config)
    if graph is None:
        return 1
    if args.model not in graph.routes:
        names = ", ".join(sorted(graph.routes))
        print(f"error: unknown model '{args.model}'; models: {names}", file=sys.stderr)
        return 2
    key_names = [k.name for k in (*graph.keys.values(), graph.anonymous) if k is not None]
    if args.key is not None and args.key not in key_names:
        hint = did_you_mean(args.key, key_names)
        print(
            f"error: unknown key '{args.key}'{hint}; keys: {', '.join(key_names)}", file=sys.stderr
        )
        return 2
    print(explain(graph, args.model, args.key))
    return 0


def schema_json() -> str:
    from router.config.models import RouterConfig

    schema = RouterConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "llm-switchyard config"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def _schema(args: argparse.Namespace) -> int:
    text = schema_json()
    if args.stdout:
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    return 0


def _plugins(args: argparse.Namespace) -> int:
    from router.plugins import provider_plugins

    for name, plugin in sorted(provider_plugins().items()):
        print(f"{name}\t{plugin.distribution} {plugin.version}")
    return 0


def _version() -> str:
    """The installed distribution's version (a source tree run without installing: unknown)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llm-switchyard")
    except PackageNotFoundError:
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-switchyard", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the OpenAI API for a config")
    serve.add_argument("--config", help="config file (or LLM_ROUTER_CONFIG)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.set_defaults(func=_serve)

    check = sub.add_parser("check", help="validate a config and summarise its routing graph")
    check.add_argument("path", nargs="?", help="config file (or --config)")
    check.add_argument("--config", help="config file, as `serve` and `explain` take it")
    check.add_argument(
        "--strict", action="store_true", help="fail on warnings too (exit 1), not only errors"
    )
    check.set_defaults(func=_check)

    explain = sub.add_parser("explain", help="print the route a request for a model would take")
    explain.add_argument("--config", required=True, help="config file")
    explain.add_argument("--model", required=True, help="public model name")
    explain.add_argument("--key", help="client key name for the request headers shown")
    explain.set_defaults(func=_explain)

    from router.spend.cli import add_usage_command

    add_usage_command(sub)

    schema = sub.add_parser("schema", help="write the config's JSON Schema")
    schema.add_argument("--output", default=str(SCHEMA_PATH))
    schema.add_argument("--stdout", action="store_true")
    schema.set_defaults(func=_schema)

    plugins = sub.add_parser("plugins", help="list installed provider plugins")
    plugins.set_defaults(func=_plugins)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
