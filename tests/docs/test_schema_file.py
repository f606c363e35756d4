"""The config's JSON Schema ships in the package, so that the editor modeline docs/config.md
describes works for an installed router, outside a checkout."""

import json
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from router.cli import schema_json
from router.testing.server import cli_command

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "config.md").read_text()
PACKAGED = "router/config/router.schema.json"


def test_the_packaged_schema_and_the_checkouts_copy_are_current():
    shipped = resources.files("router.config").joinpath("router.schema.json").read_text()
    assert shipped == schema_json(), "run: llm-switchyard schema"
    assert (ROOT / "schema" / "router.schema.json").read_text() == shipped


def test_the_docs_modeline_instruction_works_outside_a_checkout(tmp_path):
    """The documented command, run where a user keeps a config, then the documented first
    line: the YAML language server finds a valid schema that accepts the quickstart."""
    command = re.search(r"```sh\n(llm-switchyard schema --output (\S+))\n```", DOC)
    modeline = re.search(r"```yaml\n(# yaml-language-server: \$schema=(\S+))\n```", DOC)
    assert command and modeline, "docs/config.md lost its modeline instructions"
    argv = command.group(1).split()
    done = subprocess.run(
        [cli_command(), *argv[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    quickstart = (ROOT / "examples" / "configs" / "quickstart.yaml").read_text()
    config = tmp_path / "router.yaml"
    config.write_text(modeline.group(1) + "\n" + quickstart.split("\n", 1)[1])

    first = config.read_text().splitlines()[0]
    schema_path = config.parent / first.split("$schema=", 1)[1]
    assert schema_path.read_text() == (ROOT / "schema" / "router.schema.json").read_text()
    schema = json.loads(schema_path.read_text())
    Draft202012Validator.check_schema(schema)
    errors = Draft202012Validator(schema).iter_errors(yaml.safe_load(config.read_text()))
    assert [e.message for e in errors if "${" not in e.message] == []
    wrong = Draft202012Validator(schema).iter_errors({"server": {"port": "many"}})
    assert any("port" in "/".join(map(str, e.absolute_path)) for e in wrong)


@pytest.mark.slow
def test_the_wheel_ships_the_schema(tmp_path):
    """Built as the Dockerfile builds it: the project files and the package only."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "router", source / "router", ignore=shutil.ignore_patterns("__pycache__")
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), source],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("llm_switchyard-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read(PACKAGED).decode() == schema_json()
