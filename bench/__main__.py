"""`python -m bench [--scenario NAME]`: the router's cost, measured. See bench/README.md.

Without `--scenario` (or with `compare`): the router beside direct calls, the bare relay,
LiteLLM, Portkey's gateway and nginx, in one run. Each other scenario grows one kind of work
and reports the router's cost per unit of it at each size, with a "flat within 10%?" verdict:

  streams       many open streams held by a slow upstream (one chunk a second)
  big-config    1,000 models, 200 providers, 10,000 client keys (half as sha256 digests)
  big-bodies    prompts of 100 KB, 1 MB and 4 MB
  long-streams  answers of up to 10,000 chunks
  workers       `--workers 1` and `2` sharing limits through Redis
  spend         a money budget and the usage ledger on, against off (CPU per request)
  axes          all five in turn, and one line per axis in bench/results/axes.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import compare, procs, targets
from bench.scenario import RESULTS

QUICK_RESULTS = targets.CACHE / "quick"  # a --quick run never replaces a full run's results

SCENARIOS = (
    "compare",
    "streams",
    "big-config",
    "big-bodies",
    "long-streams",
    "workers",
    "spend",
    "axes",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--scenario", default="compare", choices=SCENARIOS)
    parser.add_argument("--quick", action="store_true", help="seconds, not minutes")
    parser.add_argument(
        "--only", help=f"compare: comma-separated subset of {','.join(targets.ALL)}"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load run")
    parser.add_argument("--stream-duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--settle", type=float, default=2.0, help="idle seconds before idle RSS")
    parser.add_argument("--sizes", help="a scenario's sizes, comma-separated (see README)")
    parser.add_argument(
        "--router-server",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra `server:` setting in the router's config (VALUE read as JSON)",
    )
    parser.add_argument(
        "--out",
        help="path without suffix (default: bench/results/<scenario>, or latest for compare;"
        " under bench/.cache/quick/ with --quick)",
    )
    parser.add_argument("--no-install", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.duration, args.stream_duration = 1, 1.0, 1.0
        args.warmup, args.settle = 1.0, 0.3
    args.names = args.only.split(",") if args.only else list(targets.ALL)
    unknown = set(args.names) - set(targets.ALL)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    if args.sizes:
        try:
            args.sizes = [int(float(x)) for x in args.sizes.split(",")]
        except ValueError:
            parser.error("--sizes takes comma-separated numbers")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    procs.raise_open_files()
    results = QUICK_RESULTS if args.quick else RESULTS
    if args.scenario == "compare":
        args.out = args.out or str(results / "latest")
        return compare.run(args, argv)
    from bench import scenarios

    if not args.no_install:
        needs_redis = args.scenario in ("workers", "axes")
        compare.ensure_tools([], ("redis-server:redis-server",) if needs_redis else ())
    procs.pin_harness()
    targets.CACHE.mkdir(exist_ok=True)
    if args.scenario == "axes":
        return scenarios.run_axes(args, argv, Path(args.out) if args.out else results / "axes")
    result = scenarios.run(args.scenario, args, argv)
    print(result.write(Path(args.out) if args.out else results / args.scenario))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
