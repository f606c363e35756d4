"""Validate what the router returns against the official OpenAI OpenAPI description.

The description is others' document, so it is not shipped: tests find it through the
OPENAI_OPENAPI_SPEC environment variable. Where it is unset, the tests still run and only
this extra check is left out (`optional_validator`).
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # jsonschema is a test dependency: imported only where a spec is found
    from referencing import Registry

ENV_VAR = "OPENAI_OPENAPI_SPEC"
_URI = "urn:openai-openapi"


def _lenient_nullable(node: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` (still used in the 3.1 file) as JSON Schema's null type."""
    if isinstance(node, dict):
        node = {k: _lenient_nullable(v) for k, v in node.items()}
        if node.get("nullable") is True:
            if isinstance(node.get("type"), str):
                node["type"] = [node["type"], "null"]
            if isinstance(node.get("enum"), list) and None not in node["enum"]:
                node["enum"] = [*node["enum"], None]
        return node
    if isinstance(node, list):
        return [_lenient_nullable(v) for v in node]
    return node


@functools.cache
def _registry(path: str) -> Registry:
    import yaml
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    with open(path, encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    resource = Resource.from_contents(
        _lenient_nullable(document), default_specification=DRAFT202012
    )
    return Registry().with_resource(_URI, resource)


def spec_path() -> str | None:
    path = os.environ.get(ENV_VAR)
    return path if path and os.path.exists(path) else None


class OpenAPIValidator:
    """`validate("CreateChatCompletionResponse", data)` raises on any deviation."""

    def __init__(self, path: str) -> None:
        self.registry = _registry(path)

    def errors(self, schema_name: str, instance: Any) -> list[str]:
        from jsonschema import Draft202012Validator

        schema = {"$ref": f"{_URI}#/components/schemas/{schema_name}"}
        validator = Draft202012Validator(schema, registry=self.registry)
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator.iter_errors(instance)
        ]

    def validate(self, schema_name: str, instance: Any) -> None:
        problems = self.errors(schema_name, instance)
        if problems:
            raise AssertionError(f"not a valid {schema_name}:\n" + "\n".join(problems[:10]))


class NoSpecValidator:
    """Stands in for `OpenAPIValidator` where the description is not available: the test
    runs all its own assertions, and only the schema check is left out."""

    def errors(self, schema_name: str, instance: Any) -> list[str]:
        return []

    def validate(self, schema_name: str, instance: Any) -> None:
        return None


def optional_validator() -> OpenAPIValidator | NoSpecValidator:
    """A validator for the description where it is available, else one that checks nothing."""
    path = spec_path()
    return OpenAPIValidator(path) if path is not None else NoSpecValidator()
