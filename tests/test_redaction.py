"""`router.observability.redaction`: which forms of a secret are masked in upstream error
text, which values are too short to search for, and what is never touched."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from router import errors
from router.observability import logs
from router.observability.redaction import MIN_FREE_TEXT, Redactor

KEY = "sk-proj-Tq9xWv3LmZ8kPb2NcR7dYh4FsJ6gA1gU"
TOKEN = "tok_8c1e55f0d2b94a7e"  # not `sk-`: only its own needles and fragments find it
DIGEST = hashlib.sha256(KEY.encode()).hexdigest()
REDACTOR = Redactor([KEY, TOKEN, "eu", "1"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"key {KEY} refused", "key *** refused"),
        (f"hash {DIGEST}", "hash ***"),
        (f"HASH {DIGEST.upper()}", "HASH ***"),
        # OpenAI's 401, current and older key formats
        (
            "Incorrect API key provided: sk-proj-" + "*" * 60 + "A1gU. You can find it there.",
            "Incorrect API key provided: ***. You can find it there.",
        ),
        ("Incorrect API key provided: sk-abc12" + "*" * 30 + "A1gU.", "provided: ***."),
        # LiteLLM's abbreviations and hash
        (
            f"Received API Key = sk-...A1gU, Key Hash (Token) ={DIGEST}. Unable",
            "Received API Key = ***, Key Hash (Token) =***. Unable",
        ),
        ("Received=abcd****wxyz, expected to start with 'sk-'.", "Received=***, expected"),
        # fragments of a key that does not start with `sk-`
        ("token tok_...4a7e is revoked", "token *** is revoked"),
        ("token tok_8c1e****4a7e is revoked", "token *** is revoked"),
        ("token …4a7e is revoked", "token *** is revoked"),
        (f"token {TOKEN}", "token ***"),
        # any key echoed the usual ways, configured or not (a proxy's own upstream key)
        ("Incorrect API key provided: abc123xyz.", "Incorrect API key provided: ***."),
        ("key sk-live-ABC_def.ghi was refused", "key sk-*** was refused"),
        ("Incorrect API key provided: sk-fake.\n\nLiteLLM", "provided: ***.\n\nLiteLLM"),
    ],
)
def test_every_echoed_form_is_masked(text, expected):
    redacted = REDACTOR.text(text)
    assert expected in redacted, redacted
    for leak in (KEY, DIGEST, DIGEST.upper(), "A1gU", TOKEN, "4a7e", "abc123xyz", "wxyz"):
        assert leak not in redacted


@pytest.mark.parametrize(
    "text",
    [
        "Rate limit reached for gpt-4o-mini in organization org-abc on tokens per min (TPM): "
        "Limit 30000, Used 29000, Requested 1500. Please try again in 2.5s. Visit "
        "https://platform.openai.com/account/rate-limits to learn more.",
        "This model's maximum context length is 8192 tokens... you requested 9000 tokens.",
        "The server had an error while processing your request. Sorry about that!",
        "eu-west-1 is down; retry 1 of 3 in region eu",  # short values are not searched for
        "task-123 and desk-4 are fine",
    ],
)
def test_ordinary_error_text_is_left_alone(text):
    assert REDACTOR.text(text) == text


def test_values_shorter_than_the_minimum_are_not_needles():
    assert MIN_FREE_TEXT == 8
    short = "x" * (MIN_FREE_TEXT - 1)
    long = "y" * MIN_FREE_TEXT
    redactor = Redactor([short, long])
    assert redactor.text(f"{short} {long}") == f"{short} ***"
    logs.register_secrets([short, long])
    try:
        assert logs.mask(f"{short} {long} {hashlib.sha256(long.encode()).hexdigest()}") == (
            f"{short} *** ***"
        )
    finally:
        logs.register_secrets([])


def test_a_redacted_json_body_stays_json():
    body = orjson.dumps(
        {
            "error": {
                "message": f'quote "Received={KEY}" then \\ Received=abcd\\ and '
                f'API key provided: x"y and Key Hash (Token) ={DIGEST}',
                "param": KEY,
            }
        }
    )
    redacted = REDACTOR.body(body)
    data = orjson.loads(redacted)
    assert KEY not in data["error"]["message"] and data["error"]["param"] == "***"
    assert DIGEST not in redacted.decode()
    assert REDACTOR.body(b'{"ok": true}') == b'{"ok": true}'


def test_scrub_cleans_every_text_of_an_error_in_place():
    error = errors.UpstreamBadRequest(
        "upstream 'up' returned 400: bad key sk-...A1gU",
        param=f"key={KEY}",
        code=f"hash-{DIGEST}",
        headers={"x-echo": TOKEN},
    )
    REDACTOR.scrub(error)
    shown = f"{error} {error.message} {error.param} {error.code} {error.headers} {error.to_json()}"
    for leak in (KEY, "A1gU", DIGEST, TOKEN):
        assert leak not in shown
    assert str(error) == "upstream 'up' returned 400: bad key ***"
    assert "Redactor" in repr(REDACTOR) and "sk-" not in repr(REDACTOR)


KINDS = """
server:
  admin_key: admin-Secret-01
  rate_limit_backend: {url: "redis://:redis-Secret-02@127.0.0.1:6379/0"}
providers:
  up:
    plugin: openai
    base_url: "http://user:url-Secret-03@127.0.0.1:9/v1"
    api_key: key-Secret-04
    headers: {X-Auth-Token: "Bearer hdr-Secret-05", x-team: "${TEAM}"}
models:
  chat: {targets: [{provider: up, model: "${MODEL}"}]}
keys:
  app: {key: client-Secret-06}
header_rewrites:
  - {set: {x-api-token: rule-Secret-07, x-plain: shown-value}}
"""


def test_every_kind_of_secret_is_found_and_masked_in_admin_output(tmp_path):
    from router.graph.load import load_graph
    from router.graph.masked import masked_config

    path = tmp_path / "router.yaml"
    path.write_text(KINDS)
    graph = load_graph(path, {"TEAM": "team-Secret-08", "MODEL": "m1"})
    expected = {f"{kind}-Secret-0{i}" for i, kind in enumerate(KIND_NAMES, 1)}
    assert expected | {"Bearer hdr-Secret-05", "m1"} <= set(graph.secrets)
    shown = orjson.dumps(masked_config(graph)).decode()
    for secret in (*expected, "m1"):
        assert secret not in shown
    assert "shown-value" in shown and '"model":"***"' in shown  # `m1` came from `${MODEL}`
    assert graph.redactor.text("at http://user:url-Secret-03@host") == "at http://user:***@host"


KIND_NAMES = ("admin", "redis", "url", "key", "hdr", "client", "rule", "team")
