"""The config reference, generated from the pydantic models' field descriptions.

`docs/config.md` embeds this text between markers; a test fails when it is stale or when a
key has no description, so the documentation cannot drift from the code.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from router.config.models import RouterConfig

BEGIN = "<!-- BEGIN GENERATED REFERENCE: llm-switchyard docs -->"
END = "<!-- END GENERATED REFERENCE -->"


def _models_in(annotation: Any) -> Iterator[tuple[str, type[BaseModel]]]:
    """(path suffix, model) for every model nested in an annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield "", annotation
        return
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is dict and len(args) == 2:
        for suffix, model in _models_in(args[1]):
            yield ".<name>" + suffix, model
    elif origin is list and args:
        for suffix, model in _models_in(args[0]):
            yield "[]" + suffix, model
    elif origin in (typing.Union, types.UnionType) or origin is typing.Annotated:
        for arg in args:
            yield from _models_in(arg)


_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))


def _bounds(metadata: list[Any]) -> str:
    """Annotated-types bounds (`Ge(ge=1)`, `Le(le=...)`) as `>= 1, <= ...`."""
    found = [
        f"{sign} {getattr(item, name)}"
        for item in metadata
        for name, sign in _BOUNDS
        if getattr(item, name, None) is not None
    ]
    return ", ".join(found)


def _type_name(annotation: Any, metadata: list[Any] | None = None) -> str:
    """A type as a reader of the YAML thinks of it: `int | null`, `list[str]`, a literal's
    values, a nested section's model name, bounds in brackets (`int (>= 1)`)."""
    text = _plain_type(annotation)
    bounds = _bounds(metadata or [])
    return f"{text} ({bounds})" if bounds else text


def _plain_type(annotation: Any) -> str:
    if annotation is None or annotation is type(None):
        return "null"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        field = next((a for a in args[1:] if isinstance(a, FieldInfo)), None)
        metadata = [*(field.metadata if field else []), *args[1:]]
        return _type_name(args[0], metadata)
    if origin in (typing.Union, types.UnionType):
        ordered = sorted(args, key=lambda arg: arg is type(None))  # null last
        return " | ".join(_plain_type(arg) for arg in ordered)
    if origin is typing.Literal:
        return " | ".join(f'"{v}"' if isinstance(v, str) else repr(v) for v in args)
    if annotation is typing.Any:
        return "any"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " | ".join(repr(member.value) for member in annotation)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(_plain_type(arg) for arg in args)}]" if args else name
    if annotation is SecretStr:
        return "str (secret)"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _default(field: FieldInfo) -> str:
    if field.default is not PydanticUndefined:
        value = field.default
        if isinstance(value, BaseModel):
            return "(see below)"
        return f"`{_value(value)}`" if value is not None else "none"
    if field.default_factory is not None:
        try:
            value = field.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return "(computed)"
        return "(see below)" if isinstance(value, BaseModel) else f"`{_value(value)}`"
    return "**required**"


def _value(value: Any) -> str:
    """A default as the YAML (JSON) would write it: `"keys"`, `true`, `[]`."""
    try:
        return json.dumps(value)
    except TypeError:
        return repr(value)


def iter_keys(
    model: type[BaseModel] = RouterConfig, prefix: str = ""
) -> Iterator[tuple[str, FieldInfo]]:
    """Every documented key path with its field, depth first."""
    for name, field in model.model_fields.items():
        name = field.alias or name  # what the YAML says
        path = f"{prefix}.{name}" if prefix else name
        yield path, field
        for suffix, nested in _models_in(field.annotation):
            yield from iter_keys(nested, path + suffix)


def render() -> str:
    lines = [BEGIN, "", "| key | type | default | description |", "|---|---|---|---|"]
    for path, field in iter_keys():
        description = (field.description or "").replace("\n", " ").replace("|", "\\|")
        type_name = _type_name(field.annotation, field.metadata).replace("|", "\\|")
        lines.append(f"| `{path}` | {type_name} | {_default(field)} | {description} |")
    lines += ["", END]
    return "\n".join(lines)


def undocumented() -> list[str]:
    return [path for path, field in iter_keys() if not (field.description or "").strip()]


def write(path: str) -> None:
    """Replace the generated part of a Markdown file with the current reference."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(head + render() + tail)


if __name__ == "__main__":
    import sys

    write(sys.argv[1] if len(sys.argv) > 1 else "docs/config.md")
