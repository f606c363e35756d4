"""A third party's path: copy plugins/_template, rename it, install it, route through it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from router.testing import RouterProcess, chat_completion, json_reply

TEMPLATE = Path(__file__).resolve().parents[1] / "plugins" / "_template"


def make_plugin(destination: Path, name: str) -> Path:
    """What docs/writing-a-plugin.md tells an author to do, done by a script."""
    folder = destination / f"llm-router-{name}"
    shutil.copytree(TEMPLATE, folder)
    (folder / "llm_router_example").rename(folder / f"llm_router_{name}")
    for path in folder.rglob("*"):
        if path.is_file():
            text = path.read_text()
            text = text.replace("example", name).replace("Example", name.capitalize())
            path.write_text(text)
    return folder


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugin")
    folder = make_plugin(root, "acme")
    site = root / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(folder),
        ],
        check=True,
        timeout=300,
    )
    return folder, site


def test_template_plugin_routes_a_request(installed, fake_upstream, tmp_path):
    _, site = installed
    fake_upstream.add("/v1/chat/completions", json_reply(chat_completion("from acme")))
    config = tmp_path / "router.yaml"
    config.write_text(
        f"""
server: {{auth: none}}
providers:
  a:
    plugin: acme
    base_url: {fake_upstream.url}/v1
    api_key: acme-secret-key
models:
  chat: {{targets: [{{provider: a, model: acme-1}}]}}
"""
    )
    env = {"PYTHONPATH": str(site)}
    listed = subprocess.run(
        [sys.executable, "-m", "router.cli", "plugins"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )
    assert "acme\tllm-router-acme 0.1.0" in listed.stdout
    with RouterProcess(config, env=env) as router:
        client = openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0)
        reply = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hi"}], user="u1"
        )
    assert reply.choices[0].message.content == "from acme"
    (seen,) = fake_upstream.received("/v1/chat/completions")
    assert seen.headers["x-acme-key"] == "acme-secret-key"
    assert "user" not in seen.json()


def test_template_plugin_passes_its_own_conformance_tests(installed):
    folder, site = installed
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder / "tests")],
        capture_output=True,
        text=True,
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(site)},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
