"""The documentation, the JSON Schema and the examples cannot drift from the code."""

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from router.cli import schema_json
from router.config.reference import BEGIN, END, render, undocumented
from router.graph.load import load_graph

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "configs").glob("*.yaml"))
MODELINE = "# yaml-language-server: $schema=../../schema/router.schema.json"
EXAMPLE_ENV = {
    "OPENAI_API_KEY": "sk-example",
    "TELKOM_API_KEY": "telkom-example-key",
    "TELNYX_API_KEY": "KEY-example",
    "KOBOILLM_API_KEY": "sk-example",
    "TOKLIGENCE_API_KEY": "tok_example",
    "LLM_ROUTER_ADMIN_KEY": "admin-example",
}


def test_every_config_key_is_documented():
    assert undocumented() == []


def test_config_reference_is_current():
    text = (ROOT / "docs" / "config.md").read_text()
    generated = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert generated == render(), "run: python -m router.config.reference docs/config.md"


def test_checked_in_schema_is_current():
    checked_in = (ROOT / "schema" / "router.schema.json").read_text()
    assert checked_in == schema_json(), "run: llm-switchyard schema"


def test_there_are_examples():
    assert any(path.name == "quickstart.yaml" for path in EXAMPLES)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_config_loads_and_matches_the_schema(path, monkeypatch):
    for name, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(name, value)
    text = path.read_text()
    assert text.splitlines()[0] == MODELINE
    load_graph(str(path))
    schema = json.loads((ROOT / "schema" / "router.schema.json").read_text())
    # Editors see the raw file: `${ENV}` strings are valid wherever a string is.
    raw = yaml.safe_load(text)
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(raw)]
    assert not [e for e in errors if "${" not in e], errors


def test_config_reference_shows_readable_types():
    """Types as a reader of the YAML thinks of them, not Python's typing reprs."""
    lines = render().splitlines()[4:-2]
    rows = {line.split(" | ")[0][3:-1]: line.split(" | ")[1] for line in lines}
    for noise in ("Annotated", "FieldInfo", "Optional[", "typing", "NoneType", "<class"):
        assert not [row for row in rows.values() if noise in row], noise
    assert rows["rate_limits.<name>.requests_per_minute"] == r"int (>= 1, <= 1000000000000) \| null"
    assert rows["server.auth"] == r'"keys" \| "none"'
    assert rows["server.max_body_bytes_by_operation"] == "dict[str, int (>= 1024)]"
    assert rows["providers.<name>.api_key"] == r"str (secret) \| null"
    assert rows["models.<name>.targets"] == "list[TargetConfig]"
