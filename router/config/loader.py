"""YAML into `RouterConfig`, with `${ENV}` interpolation and file:line:key errors.

The YAML is composed into nodes (not loaded) so that every value keeps its line; duplicate
keys, which PyYAML would silently overwrite, are errors. A `${` is either a reference,
`${NAME}` or `${NAME:-default}`, or the escape `$${`; anything else is an error, so that a
mistyped reference never becomes a literal credential.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError

from router.checkpoints import checkpoint
from router.config.models import RouterConfig
from router.config.salvage import salvage
from router.config.secrets import holds_secret

Path_ = tuple[str | int, ...]
# `$${` (the escape); a reference, `${NAME}` or `${NAME:-default}` (a default holds no `}`
# and no `${`); or, without `name`, any other `${...}`, which is an error.
_ENV_REF = re.compile(
    r"\$(?P<escaped>\$)\{"
    r"|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>(?:[^}$]|\$(?!\{))*))?\}"
    r"|\$\{[^}]*\}?"
)
_NAME_START = re.compile(r"[A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a config file, located as precisely as the YAML allows. A warning is a
    config that loads but is almost surely wrong (see `router.config.lint`)."""

    file: str
    line: int | None
    path: str
    message: str
    severity: Literal["error", "warning"] = "error"
    parts: Path_ = field(default=(), compare=False, repr=False)  # `path`, unformatted

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        if self.severity == "warning":
            where += ": warning"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def as_error(self, because: str) -> ConfigIssue:
        """This warning as an error, saying which strict setting made it one."""
        message = f"{self.message} (an error {because})"
        return ConfigIssue(self.file, self.line, self.path, message, "error", self.parts)


class ConfigError(Exception):
    """A config that cannot be loaded; `issues` lists every problem found."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


def format_path(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def is_under(parts: Path_, paths: Iterable[Path_]) -> bool:
    """Whether `parts` is one of `paths` or inside one of them."""
    return any(parts[: len(p)] == p for p in paths if p)


def by_line(issues: Iterable[ConfigIssue]) -> list[ConfigIssue]:
    return sorted(issues, key=lambda issue: issue.line or 0)


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass
class SourceMap:
    """Where each value of a loaded YAML document came from: its line, and for a value
    written with `${ENV}` references, the values the environment gave them (every one a
    secret: admin output and `explain` mask the value, logs and errors the values)."""

    file: str
    lines: dict[Path_, int] = field(default_factory=dict)
    from_env: dict[Path_, list[str]] = field(default_factory=dict)  # values read from ${ENV}
    referenced: set[Path_] = field(default_factory=set)  # values written with `${ENV}`

    def line_of(self, path: Iterable[str | int]) -> int | None:
        parts = tuple(path)
        while parts:
            if parts in self.lines:
                return self.lines[parts]
            parts = parts[:-1]
        return self.lines.get(())

    def issue(
        self,
        path: Iterable[str | int],
        message: str,
        severity: Literal["error", "warning"] = "error",
    ) -> ConfigIssue:
        parts = tuple(path)
        line = self.line_of(parts)
        return ConfigIssue(self.file, line, format_path(parts), message, severity, parts)


_MERGE = "tag:yaml.org,2002:merge"  # the tag of `<<`


class _Builder:
    """Turns composed YAML nodes into plain Python, recording lines and interpolating env."""

    def __init__(self, source: SourceMap, environ: Mapping[str, str]) -> None:
        self.source = source
        self.environ = environ
        self.issues: list[ConfigIssue] = []
        self.constructor = yaml.SafeLoader("")
        # Per mapping node (by id: every node lives until the build ends), how many of its
        # pairs came from merge keys (`<<`), which flattening puts first.
        self.merged: dict[int, int] = {}

    def close(self) -> None:
        """Let go of every node now: the constructor keeps each it built, and sits in a
        reference cycle of its own (its parser's state), so a 10,000-key config's nodes would
        otherwise wait for a full garbage collection (a second, holding up the event loop
        of a reloading router)."""
        self.constructor.constructed_objects.clear()
        self.constructor.dispose()

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.source.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            checkpoint()
            merged = self.merged.get(id(node))
            if merged is None:  # (an alias builds the same node again, flattened by then)
                written = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE)
                self.constructor.flatten_mapping(node)  # merged pairs first, then written ones
                merged = self.merged[id(node)] = len(node.value) - written
            result: dict[Any, Any] = {}
            overridable: set[str] = set()  # keys a merge (`<<: *anchor`) gave
            for i, (key_node, value_node) in enumerate(node.value):
                key = self.constructor.construct_object(key_node)
                if not isinstance(key, str | int | float | bool):
                    self.issues.append(self.source.issue(path, "mapping keys must be scalars"))
                    continue
                key = str(key)
                if i < merged:
                    overridable.add(key)  # a later merge, or a key written here, overrides it
                elif key in overridable:
                    overridable.discard(key)
                    del result[key]
                if key in result and i >= merged:
                    self.source.lines[(*path, key)] = key_node.start_mark.line + 1
                    self.issues.append(
                        self.source.issue((*path, key), "duplicate key (each name must be unique)")
                    )
                    continue
                result[key] = self.build(value_node, (*path, key))
                self.source.lines[(*path, key)] = key_node.start_mark.line + 1
            return result
        if isinstance(node, yaml.SequenceNode):
            checkpoint()
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if node.tag == "tag:yaml.org,2002:str" and "${" in node.value:
            if any(m.group("name") for m in _ENV_REF.finditer(node.value)):
                self.source.referenced.add(path)
            return self.interpolate(node.value, path)
        return self.constructor.construct_object(node)

    def interpolate(self, value: str, path: Path_) -> str:
        def replace(match: re.Match[str]) -> str:
            escaped, name, default = match.groups()
            if escaped:
                return match.group(0)[1:]
            if name is None:
                self.issues.append(self.source.issue(path, bad_reference(value, match.start())))
                return ""
            found = self.environ.get(name)
            if found is None or (found == "" and default is not None):
                if default is not None:
                    return default
                self.issues.append(
                    self.source.issue(path, f"environment variable '{name}' is not set")
                )
                return ""
            if found == "" and holds_secret(path, value, match.start()):
                self.issues.append(
                    self.source.issue(
                        path,
                        f"environment variable '{name}' is set but empty, and a secret "
                        f"cannot be empty (set it, or give a default: ${{{name}:-...}})",
                    )
                )
            self.source.from_env.setdefault(path, []).append(found)
            return found

        return _ENV_REF.sub(replace, value)


def bad_reference(text: str, start: int) -> str:
    """Why the `${` at `start` of `text` is not a reference, and the right form. The text after
    the variable's name is not repeated: in a secret's value it may be the secret itself."""
    end = text.find("}", start)
    body = text[start + 2 : end if end >= 0 else len(text)]
    name = m.group(0) if (m := _NAME_START.match(body)) else ""
    rest = body[len(name) :]
    separator = rest[:1] if rest[:1] in (":", "-") else ""
    shown = f"${{{name}{separator}" + ("..." if rest else "") + ("}" if end >= 0 else "")
    if end < 0:
        why = f"'{shown}' has no closing '}}'"
    elif not body:
        why = "'${}' names no variable"
    elif not name or name[0].isdigit():
        why = f"'{shown}' is not a reference: a variable name starts with a letter or '_'"
    elif rest.startswith(":-"):
        why = f"'{shown}' is not a reference: a default cannot contain '${{'"
    elif separator:
        why = f"'{shown}' is not a reference: a default is written ${{{name}:-...}}" + (
            ", and a variable name has only letters, digits and '_'" if separator == "-" else ""
        )
    else:
        why = f"'{shown}' is not a reference: a variable name has only letters, digits and '_'"
    return f"{why}; write ${{NAME}} or ${{NAME:-default}}, or $${{ for a literal '${{'"


_resolve = yaml.resolver.BaseResolver.resolve


def _pausing(loader: type[Any]) -> type[Any]:
    """`loader`, with a `checkpoint` at each mapping and sequence it composes: the resolver
    is the one part of composing that calls back into Python, libyaml's own parsing of a
    10,000-key config otherwise running 5-10 ms at a stretch under a paced reload."""

    def resolve(self: Any, kind: type[yaml.Node], value: Any, implicit: Any) -> Any:
        if kind is not yaml.ScalarNode:
            checkpoint()
        return _resolve(self, kind, value, implicit)

    return type(f"Pausing{loader.__name__}", (loader,), {"resolve": resolve})


_FAST = getattr(yaml, "CSafeLoader", None)
_FAST_LOADER = _pausing(_FAST) if _FAST is not None else None
_SLOW_LOADER = _pausing(yaml.SafeLoader)


def _compose(text: str) -> yaml.Node | None:
    """The document's node tree, by libyaml where PyYAML has it (a config of 10,000 keys
    parses in about a second, against twenty in pure Python); a file libyaml refuses is
    parsed again in pure Python, so that its error is the one PyYAML has always given."""
    if _FAST_LOADER is not None:
        try:
            return yaml.compose(text, Loader=_FAST_LOADER)  # type: ignore[no-any-return]
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=_SLOW_LOADER)  # type: ignore[no-any-return]


def parse_yaml(
    text: str, file: str, environ: Mapping[str, str] | None = None
) -> tuple[Any, SourceMap, list[ConfigIssue]]:
    """Plain data, its source map and `${ENV}` problems; raises ConfigError for bad syntax."""
    source = SourceMap(file)
    try:
        node = _compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError([ConfigIssue(file, line, "", f"invalid YAML: {problem}")]) from None
    if node is None:
        raise ConfigError([ConfigIssue(file, 1, "", "the file is empty")])
    builder = _Builder(source, os.environ if environ is None else environ)
    try:
        data = builder.build(node, ())
    finally:
        builder.close()
        _release(node)
    return data, source, builder.issues


def _release(root: yaml.Node) -> None:
    """Free a composed document a node at a time. Dropping the root frees the whole tree in
    one cascade of C deallocations that no other thread can interrupt: 40-80 ms for a
    config of 10,000 keys, during which a reloading router's event loop served nothing.
    Popped one by one in a Python loop, the nodes go while the loop can still run between.
    (After the build, so a node an alias shares is only let go, not emptied, before it is
    read again.)"""
    stack = [root]
    while stack:
        node = stack.pop()
        children = node.value
        if type(children) is list:
            while children:
                checkpoint()
                child = children.pop()
                if type(child) is tuple:  # a mapping's (key, value)
                    stack += child
                else:
                    stack.append(child)


def _model_fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model that `loc` points into, for 'did you mean' hints."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(part))
            if info is None:
                return []
            current = info.annotation
        else:
            args = getattr(current, "__args__", ())
            current = args[-1] if args else None
            if isinstance(part, int) or current is None:
                continue
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    for arg in getattr(current, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return list(arg.model_fields)
    return []


def validation_issues(
    exc: ValidationError,
    source: SourceMap,
    prefix: Path_ = (),
    model: type[BaseModel] | None = None,
) -> list[ConfigIssue]:
    """pydantic errors as file:line:key issues."""
    issues = []
    for err in exc.errors(include_url=False):
        loc = tuple(part for part in err["loc"] if isinstance(part, int) or "[" not in str(part))
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            key = str(loc[-1]) if loc else ""
            fields = _model_fields_at(model, loc[:-1]) if model is not None else []
            message = f"unknown key '{key}'{did_you_mean(key, fields)}"
        elif err["type"] == "missing":
            message = "required key is missing"
        elif err["type"] == "too_short":
            message = "must not be empty"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        issues.append(source.issue((*prefix, *loc), message))
    return issues


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A config file as loaded. With `issues`, `config` holds what validated: each invalid
    entry keeps its valid keys or is an inert stand-in, the paths of what was replaced are in
    `replaced`, and the graph's reference checks still run on the rest (`router.graph.compile`), so
    that one run reports every problem."""

    config: RouterConfig
    source: SourceMap
    issues: tuple[ConfigIssue, ...] = ()
    replaced: frozenset[Path_] = frozenset()


def parse_config(
    text: str, file: str = "<config>", environ: Mapping[str, str] | None = None
) -> LoadedConfig:
    """Parse and validate; raises ConfigError only when there is nothing to check further
    (invalid YAML, an empty file, a top level that is not a mapping)."""
    data, source, env_issues = parse_yaml(text, file, environ)
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue(file, 1, "", "the top level must be a mapping of keys")])
    # A value whose `${ENV}` failed is reported once, not again for the shape it then had.
    unresolved = frozenset(issue.parts for issue in env_issues)
    try:
        config = RouterConfig.model_validate(data)
        return LoadedConfig(config, source, tuple(env_issues), unresolved)
    except ValidationError as exc:
        found = validation_issues(exc, source, model=RouterConfig)
    config, replaced = salvage(data)
    issues = env_issues + [i for i in found if not is_under(i.parts, unresolved)]
    return LoadedConfig(config, source, tuple(issues), replaced | unresolved)


def load_config_text(
    text: str, file: str = "<config>", environ: Mapping[str, str] | None = None
) -> tuple[RouterConfig, SourceMap]:
    """Parse and validate shapes only (see `router.graph.compile` for references)."""
    loaded = parse_config(text, file, environ)
    if loaded.issues:
        raise ConfigError(by_line(loaded.issues))
    return loaded.config, loaded.source


def load_config(
    path: str | Path, environ: Mapping[str, str] | None = None
) -> tuple[RouterConfig, SourceMap]:
    """Read and validate one config file (shapes only; `router.graph.compile` checks the
    references)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [ConfigIssue(str(path), None, "", f"cannot read: {exc.strerror}")]
        ) from None
    return load_config_text(text, str(path), environ)
