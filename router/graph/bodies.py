"""The largest request body each operation accepts, resolved once per config.

An operation's own default (`Operation.max_body_bytes`: 25 MiB for an audio upload) or else
`server.max_body_bytes`; `server.max_body_bytes_by_operation` overrides either, by
operation name.
"""

from __future__ import annotations

from router.config.loader import ConfigIssue, SourceMap, did_you_mean
from router.config.models import RouterConfig
from router.operations import registered
from router.types import Operation


def compile_body_limits(
    config: RouterConfig, source: SourceMap, issues: list[ConfigIssue]
) -> dict[Operation, int]:
    """Per operation, its body limit where it is not `server.max_body_bytes`."""
    ops = {op.name: op for op in registered()}
    limits = {op: op.max_body_bytes for op in ops.values() if op.max_body_bytes is not None}
    for name, size in config.server.max_body_bytes_by_operation.items():
        op = ops.get(name)
        if op is None:
            issues.append(
                source.issue(
                    ("server", "max_body_bytes_by_operation", name),
                    f"unknown operation '{name}'{did_you_mean(name, ops)}; "
                    f"operations: {', '.join(ops)}",
                )
            )
            continue
        limits[op] = size
    return {op: size for op, size in limits.items() if size != config.server.max_body_bytes}
