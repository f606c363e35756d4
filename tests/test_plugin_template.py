"""A third party's path: copy plugins/_template, rename it, install it, route through it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from router.testing import RouterProcess, chat_completion, closed_after_test, json_reply

pytestmark = pytest.mark.slow  # packages and installs the template with pip

TEMPLATE = Path(__file__).resolve().parents[1] / "plugins" / "_template"


def make_plugin(destination: Path, name: str) -> Path:
    """What docs/writing-a-plugin.md tells an author to do, done by a script."""
    folder = destination / f"llm-switchyard-{name}"
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
    assert "acme\tllm-switchyard-acme 0.1.0" in listed.stdout
    with RouterProcess(config, env=env) as router:
        client = closed_after_test(
            openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0)
        )
        reply = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hi"}], user="u1"
        )
    assert reply.choices[0].message.content == "from acme"
    (seen,) = fake_upstream.received("/v1/chat/completions")
    assert seen.headers["x-acme-key"] == "acme-secret-key"
    assert "user" not in seen.json()


REGION_RULE = """
server: {{auth: none}}
providers:
  a:
    plugin: acme
    base_url: {url}/v1
    api_key: acme-secret-key
    settings: {{region: us}}
header_rewrites:
  - {{scope: provider, name: a, set: {{x-acme-region: ap}}}}
models:
  chat: {{targets: [{{provider: a, model: acme-1}}]}}
"""


def test_template_region_header_is_shown_and_rewritable_and_its_key_is_not(
    installed, fake_upstream, tmp_path
):
    """The template sends its non-secret region header as an extra header, not a credential:
    a header rule may rewrite it and `explain` shows it, while the key stays masked."""
    _, site = installed
    fake_upstream.add("/v1/chat/completions", json_reply(chat_completion("from acme")))
    config = tmp_path / "router.yaml"
    config.write_text(REGION_RULE.format(url=fake_upstream.url))
    env = {**os.environ, "PYTHONPATH": str(site)}
    explained = subprocess.run(
        [sys.executable, "-m", "router.cli", "explain", "--config", str(config), "--model", "chat"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert explained.returncode == 0, explained.stderr
    assert "x-acme-region: ap" in explained.stdout
    assert "x-acme-key: ***" in explained.stdout
    assert "acme-secret-key" not in explained.stdout
    with RouterProcess(config, env={"PYTHONPATH": str(site)}) as router:
        client = closed_after_test(
            openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0)
        )
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
    (seen,) = fake_upstream.received("/v1/chat/completions")
    assert seen.headers["x-acme-region"] == "ap"
    assert seen.headers["x-acme-key"] == "acme-secret-key"


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
