"""docs/writing-a-plugin.md's first step, run verbatim in a fresh venv from a checkout's copy."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "writing-a-plugin.md"


def first_step() -> str:
    """The bash block under '## 1. Start from the template', as a reader copies it."""
    section = GUIDE.read_text().split("## 1. Start from the template", 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "the guide's first step has no bash block"
    return match.group(1)


def checkout_copy(destination: Path) -> Path:
    """The files git knows of, as a fresh clone has them (no venvs, no build output)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def plain_environment(tmp_path: Path) -> dict[str, str]:
    """A shell as a new reader has one: no active venv, `python` is the base interpreter."""
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "python").symlink_to(Path(sys.base_prefix) / "bin" / "python3")
    inside = str(Path(sys.prefix))
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if not p.startswith(inside)]
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env["PATH"] = os.pathsep.join([str(shims), *path])
    return env


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_guide_works_verbatim_in_a_fresh_venv(tmp_path):
    checkout = checkout_copy(tmp_path / "llm-switchyard")
    env = plain_environment(tmp_path)
    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", first_step()],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=1100,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert re.search(r"\d+ passed", ran.stdout), ran.stdout[-2000:]
    listed = subprocess.run(
        [str(checkout / ".venv" / "bin" / "llm-switchyard"), "plugins"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert "acme\tllm-switchyard-acme 0.1.0" in listed.stdout
    plugin = tmp_path / "llm-switchyard-acme"
    assert (plugin / "llm_router_acme").is_dir()
    assert "example" not in (plugin / "pyproject.toml").read_text()
