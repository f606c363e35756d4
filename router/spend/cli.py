"""`llm-switchyard usage`: the usage report in a terminal, as CSV or as JSON."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

import orjson

from router.spend.config import DEFAULT_LEDGER_URL
from router.spend.report import (
    DEFAULT_BY,
    DEFAULT_SINCE,
    ReportError,
    as_csv,
    as_json,
    as_table,
    parse_by,
    period,
    usage_report,
)
from router.spend.stores import LedgerError, describe


def add_usage_command(sub: Any) -> None:
    """Register `usage` on the CLI's subcommands."""
    usage = sub.add_parser(
        "usage", help="report requests, tokens and cost per key, model, ... from the ledger"
    )
    usage.add_argument(
        "--config", help="config whose `spend.ledger` is read (or LLM_ROUTER_CONFIG)"
    )
    usage.add_argument("--ledger", help="ledger URL (sqlite:///... or postgresql://...) instead")
    usage.add_argument(
        "--since",
        default=DEFAULT_SINCE,
        help=f"start: 7d, 24h, 30m, 2w ago, a date or an ISO time (default {DEFAULT_SINCE})",
    )
    usage.add_argument("--until", help="end, excluded, in the same forms (default: now)")
    usage.add_argument(
        "--by",
        default=DEFAULT_BY,
        help="group by any of key, model, provider, upstream_model, operation, outcome, day, "
        f"comma-separated; '' for totals only (default {DEFAULT_BY})",
    )
    usage.add_argument("--format", choices=("table", "csv", "json"), default="table")
    usage.set_defaults(func=run_usage)


def _ledger(args: argparse.Namespace) -> tuple[str, str, float] | None:
    """(url, currency, timeout) from --ledger or the config; None after printing why not."""
    config_path = args.config or os.environ.get("LLM_ROUTER_CONFIG")
    if args.ledger and not config_path:
        return args.ledger, "USD", 10.0
    if not config_path:
        # `spend.ledger: {}` writes this file in the router's working directory: run there,
        # `usage` needs nothing more (its currency is the config's, USD unless it says).
        default = DEFAULT_LEDGER_URL.removeprefix("sqlite:///")
        if os.path.isfile(default):
            print(
                f"(reading {default} in the working directory, the default ledger)", file=sys.stderr
            )
            return DEFAULT_LEDGER_URL, "USD", 10.0
        print(
            "error: give --config PATH (or LLM_ROUTER_CONFIG), or --ledger URL "
            f"(no {default}, the default ledger, in the working directory)",
            file=sys.stderr,
        )
        return None
    from router.config import ConfigError
    from router.graph.load import load_graph

    try:
        spend = load_graph(config_path).config.spend
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None
    if args.ledger:
        return args.ledger, spend.currency, 10.0
    if spend.ledger is None:
        print(f"error: {config_path} has no `spend.ledger`; give --ledger URL", file=sys.stderr)
        return None
    return spend.ledger.url, spend.currency, max(spend.ledger.timeout, 10.0)


def run_usage(args: argparse.Namespace) -> int:
    try:
        by = parse_by(args.by)
        since, until = period(args.since, args.until)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    found = _ledger(args)
    if found is None:
        return 2
    url, currency, timeout = found
    try:
        report = asyncio.run(usage_report(url, by, since, until, currency, timeout))
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except LedgerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the database's driver: unreachable, refused, ...
        print(f"error: cannot read the ledger ({describe(url)}): {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        sys.stdout.write(orjson.dumps(as_json(report), option=orjson.OPT_INDENT_2).decode() + "\n")
    elif args.format == "csv":
        sys.stdout.write(as_csv(report))
    else:
        sys.stdout.write(as_table(report))
    return 0
