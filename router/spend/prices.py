"""Prices compiled once per config, and a request's cost from its usage.

Money is counted in nanos, billionths of the currency unit, as integers: a price per million
tokens becomes whole nanos per million tokens when the config is loaded, so a cost is exact
to half a nano and any number of rows add up without float drift. An embedding of a few
tokens on a cheap model still costs a non-zero number of nanos.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

from router.checkpoints import checkpoint
from router.spend.config import PriceConfig

if TYPE_CHECKING:
    from router.config.loader import ConfigIssue, SourceMap
    from router.config.models import RouterConfig, TargetConfig

NANOS = 1_000_000_000  # nanos per currency unit
MILLION = 1_000_000
_HALF_MILLION = MILLION // 2  # rounds half up
_NANO_DIGITS = 9  # digits of NANOS less one


@dataclass(frozen=True, slots=True)
class Price:
    """Nanos per million tokens of each kind; for the metered operations (`METERED`), nanos
    per image, per second of audio and per million characters (None: not priced)."""

    input: int
    cached_input: int
    output: int
    image: int | None = None
    audio_second: int | None = None
    characters: int | None = None


# What a metered operation counts (`Call.units`) and the price that applies to it.
IMAGES, AUDIO_MS, CHARACTERS = "image", "audio_ms", "characters"
METERED = {
    "images": IMAGES,
    "image_edits": IMAGES,
    "image_variations": IMAGES,
    "transcriptions": AUDIO_MS,
    "translations": AUDIO_MS,
    "speech": CHARACTERS,
}
UNIT_FIELDS = {
    IMAGES: "per_image",
    AUDIO_MS: "per_audio_second",
    CHARACTERS: "per_million_characters",
}


def _nanos(value: float) -> int:
    """Whole nanos for an amount of the currency, from the decimal the YAML wrote."""
    return int((Decimal(repr(value)) * NANOS).to_integral_value(ROUND_HALF_EVEN))


def compile_price(config: PriceConfig) -> Price:
    given = (config.per_image, config.per_audio_second, config.per_million_characters)
    image, second, characters = (None if v is None else _nanos(v) for v in given)
    prompt = config.input or 0.0
    cached = prompt if config.cached_input is None else config.cached_input
    return Price(
        _nanos(prompt), _nanos(cached), _nanos(config.output or 0.0), image, second, characters
    )


def money_text(nanos: int) -> str:
    """An amount in nanos as a decimal figure of the currency, exact, no trailing zeros
    ("12.5", "0.000001", "3"). Slices of the integer's digits: a third of the time of
    `divmod` and a format, on every answer with a money budget's headers."""
    if nanos < 0:
        return "-" + money_text(-nanos)
    digits = str(nanos)
    if len(digits) <= _NANO_DIGITS:
        digits = digits.zfill(_NANO_DIGITS + 1)
    fraction = digits[-_NANO_DIGITS:].rstrip("0")
    units = digits[:-_NANO_DIGITS]
    return f"{units}.{fraction}" if fraction else units


def price_config(config: RouterConfig, target: TargetConfig) -> PriceConfig | None:
    """A target's own `price`, else its provider's `prices` for its upstream model."""
    checkpoint()  # (once a target)
    if target.price is not None:
        return target.price
    provider = config.providers.get(target.provider)
    return provider.prices.get(target.model) if provider is not None else None


def target_price(config: RouterConfig, target: TargetConfig) -> Price | None:
    found = price_config(config, target)
    return compile_price(found) if found is not None else None


def cost_nanos(price: Price, prompt: int, cached: int, completion: int) -> int:
    """The cost of one request's tokens, rounded once to a whole nano (half up).
    `prompt` includes the `cached` tokens, as OpenAI's usage counts them. (Comparisons, not
    `min` and `max`: a third of the time, on every request a budget or the ledger prices.)"""
    if cached > 0:
        if cached > prompt:
            cached = prompt
        total = (prompt - cached) * price.input + cached * price.cached_input
    else:
        total = prompt * price.input
    return (total + completion * price.output + _HALF_MILLION) // MILLION


def unit_price(price: Price, kind: str) -> int | None:
    """The price of one `kind` of `METERED` unit (see `unit_nanos`), None if not priced."""
    if kind == IMAGES:
        return price.image
    if kind == AUDIO_MS:
        return price.audio_second
    return price.characters


def unit_nanos(price: Price, kind: str, units: int) -> int | None:
    """What `units` of `kind` cost (images; milliseconds of audio; characters), rounded once
    to a whole nano (half up); None when `price` has no price for them."""
    each = unit_price(price, kind)
    if each is None:
        return None
    if kind == IMAGES:
        return units * each
    if kind == AUDIO_MS:
        return (units * each + 500) // 1000
    return (units * each + _HALF_MILLION) // MILLION


def request_nanos(
    price: Price, operation: str, prompt: int, cached: int, completion: int, units: int
) -> int | None:
    """A request's cost: its tokens, plus the `units` of a metered operation (None when
    they have no price)."""
    cost = cost_nanos(price, prompt, cached, completion)
    if not units:
        return cost
    kind = METERED.get(operation)
    extra = unit_nanos(price, kind, units) if kind is not None else 0
    return None if extra is None else cost + extra


def tokens(usage: Any) -> tuple[int, int, int]:
    """(prompt, cached, completion) tokens of an OpenAI `usage` object; 0 where absent or
    not a positive integer. (Inline checks, not a helper per count: every priced or
    budgeted request's usage is read here.)"""
    if not isinstance(usage, dict):
        return 0, 0, 0
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return (
        prompt if type(prompt) is int and prompt > 0 else 0,
        cached if type(cached) is int and cached > 0 else 0,
        completion if type(completion) is int and completion > 0 else 0,
    )


def price_warnings(config: RouterConfig, source: SourceMap) -> list[ConfigIssue]:
    """A target without a price when other targets have one (its requests would count no
    cost), and a provider's price for an upstream model none of its targets uses."""
    issues: list[ConfigIssue] = []
    targets = [
        (name, i, target)
        for name, model in config.models.items()
        for i, target in enumerate(model.targets)
    ]
    priced = [price_config(config, target) is not None for _, _, target in targets]
    if any(priced):
        for (name, i, target), has_price in zip(targets, priced, strict=True):
            if not has_price:
                message = (
                    f"target {target.provider}/{target.model} has no price, while other "
                    "targets have one: its requests are recorded with no cost (give it a "
                    f"`price`, or `providers.{target.provider}.prices.{target.model}`)"
                )
                issues.append(source.issue(("models", name, "targets", i), message, "warning"))
    used: dict[str, set[str]] = {}  # per provider, the upstream models its targets use
    for _, _, target in targets:
        used.setdefault(target.provider, set()).add(target.model)
    for provider_name, provider in config.providers.items():
        for model in provider.prices:
            if model not in used.get(provider_name, ()):
                issues.append(
                    source.issue(
                        ("providers", provider_name, "prices", model),
                        f"no target of provider '{provider_name}' uses upstream model "
                        f"'{model}', so this price applies to nothing",
                        "warning",
                    )
                )
    return issues
