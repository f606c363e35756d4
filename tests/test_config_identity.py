"""Secrets in provider `headers` are masked everywhere, and the config has one hash: the file's."""

from __future__ import annotations

import hashlib
import textwrap

import httpx
import openai
import pytest

from router.observability import logs
from router.testing import RouterServer, closed_after_test, json_reply

ADMIN = "adm-Identity-9Kq"
TOKENS = {"UP_TOKEN_1": "hdr-tok-Qw3Er5Ty7", "UP_TOKEN_2": "hdr-tok-Zx8Cv6Bn4"}
CONFIG = """
server: {{auth: none, admin_key: {admin}, watch_config: false}}
providers:
  up:
    plugin: openai
    base_url: "{url}/v1"
    headers: {{Authorization: "Bearer ${{{token}}}", x-team: blue}}
models:
  chat: {{targets: [{{provider: up, model: m}}], retries: {{attempts: 0}}}}
"""
MSGS = [{"role": "user", "content": "hi"}]


def _echo_credential(received):
    """An upstream that fails and echoes the credential it was sent, as some do."""
    sent = received.headers.get("authorization", "")
    message = f"backend broke for {sent} (token {sent.split()[-1]})"
    return json_reply({"error": {"message": message, "type": "server_error"}}, status=500)


def _hashes(url: str) -> tuple[str, str]:
    health = httpx.get(url + "/health").json()["config"]
    admin = httpx.get(url + "/admin/config", headers={"x-api-key": ADMIN}).json()["hash"]
    return health, admin


def test_header_secrets_never_leak_and_health_reports_the_files_hash(
    tmp_path, fake_upstream, monkeypatch
):
    for name, value in TOKENS.items():
        monkeypatch.setenv(name, value)  # a reload reads the process environment
    fake_upstream.set_default("/v1/chat/completions", _echo_credential)
    path = tmp_path / "router.yaml"

    def write(token: str) -> str:
        text = textwrap.dedent(CONFIG.format(admin=ADMIN, url=fake_upstream.url, token=token))
        path.write_text(text)
        return hashlib.sha256(text.encode()).hexdigest()

    def fails_masked(client: openai.OpenAI, token: str) -> None:
        with pytest.raises(openai.InternalServerError) as failed:
            client.chat.completions.create(model="chat", messages=MSGS)
        body = str(failed.value.body)
        assert "backend broke for *** (token ***)" in body  # the upstream's reason, masked
        for secret in TOKENS.values():
            assert secret not in body
        assert logs.mask(f"sent Bearer {token}; {token}") == "sent ***; ***"  # log lines too
        admin = httpx.get(router.url + "/admin/config", headers={"x-api-key": ADMIN}).text
        assert token not in admin and "Bearer" not in admin

    first = write("UP_TOKEN_1")
    with RouterServer(path) as router:
        client = closed_after_test(
            openai.OpenAI(base_url=router.base_url, api_key="unused", max_retries=0)
        )
        assert _hashes(router.url) == (first, first)
        fails_masked(client, TOKENS["UP_TOKEN_1"])

        second = write("UP_TOKEN_2")
        reply = httpx.post(router.url + "/admin/reload", headers={"x-api-key": ADMIN})
        assert reply.json() == {"result": "reloaded", "hash": second, "restart_needed": []}
        assert _hashes(router.url) == (second, second)
        fails_masked(client, TOKENS["UP_TOKEN_2"])  # the reloaded config's secret
    sent = [r.headers["authorization"] for r in fake_upstream.received("/v1/chat/completions")]
    assert sent == [f"Bearer {TOKENS['UP_TOKEN_1']}", f"Bearer {TOKENS['UP_TOKEN_2']}"]
