"""Failure steps: what a route does next when an attempt fails, by the failure's class.

The table is built once per route at load time from `models.<m>.on_failure`; dispatch only
looks the failure's `kind` up in it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from router.config.resilience import FailureSteps
from router.errors import ErrorKind


class Step(enum.Enum):
    RETRY = "retry"  # the same target again, after a backoff
    NEXT = "next"  # the next target, then the fallbacks
    CONTEXT = "context"  # the route's larger-context model
    FAIL = "fail"  # the client gets this error now


def failure_steps(config: FailureSteps) -> Mapping[ErrorKind, Step]:
    """The step table for one route. Config field names are the `ErrorKind` values."""
    steps = {ErrorKind(name): Step(value) for name, value in config.model_dump().items()}
    steps[ErrorKind.UNAVAILABLE] = Step.NEXT
    return MappingProxyType(steps)


DEFAULT_STEPS: Mapping[ErrorKind, Step] = failure_steps(FailureSteps.model_validate({}))
