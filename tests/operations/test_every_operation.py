"""Every operation beyond chat through `llm-switchyard serve`, with the official `openai` SDK
(an HTTP client for rerank, which the SDK lacks) and fake OpenAI upstreams: moderations and
rerank fail over from a provider that answers 429 to another, each operation passes on a
429's `Retry-After` when no target is left, bad bodies are 400s naming the field, and
`/v1/models` lists what each model serves."""

from __future__ import annotations

import socket

import httpx
import openai
import pytest

from router.testing.media import PNG, moderation_reply, openai_error, rerank_reply
from tests.operations.served import OPS, PATHS, SDK_DEPRECATED, Served

# -- moderations and rerank -----------------------------------------------------------


def test_moderations_fall_over_to_the_backup(served):
    served.limited("moderations", moderation_reply(["violence"]))
    result = served.client.moderations.create(model="moderations-fallback", input="I will")
    assert result.results[0].flagged and result.results[0].categories.violence
    assert served.requests("backup", "moderations")[0].json()["model"] == "up-b"


def test_rerank_falls_over_to_the_backup(served):
    served.limited("rerank", rerank_reply([0.1, 0.9]))
    body = {"model": "rerank-fallback", "query": "q", "documents": ["a", "b"], "top_n": 2}
    answer = httpx.post(served.router.base_url + "/rerank", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    assert [r["index"] for r in answer.json()["results"]] == [1, 0]
    assert answer.headers["x-router-provider"] == "backup"
    assert served.requests("backup", "rerank")[0].json() == {**body, "model": "up-b"}


# -- a 429 on each operation, with no target left ---------------------------------------


def _call(served: Served, op: str) -> None:
    model, client = f"{op}-only", served.client
    if op == "images":
        client.images.generate(model=model, prompt="x")
    elif op == "image_edits":
        client.images.edit(model=model, image=("a.png", PNG, "image/png"), prompt="x")
    elif op == "image_variations":
        client.images.create_variation(model=model, image=("a.png", PNG, "image/png"))
    elif op == "speech":
        with client.audio.speech.with_streaming_response.create(
            model=model, voice="alloy", input="x"
        ) as response:
            response.read()
    elif op in ("transcriptions", "translations"):
        with served.wav.open("rb") as audio:
            getattr(client.audio, op).create(model=model, file=audio)
    elif op == "moderations":
        client.moderations.create(model=model, input="x")
    else:
        answer = httpx.post(
            served.router.base_url + "/rerank",
            json={"model": model, "query": "q", "documents": ["a"]},
            timeout=10,
        )
        answer.raise_for_status()


@SDK_DEPRECATED
@pytest.mark.parametrize("op", OPS)
def test_a_429_with_retry_after_reaches_the_client_of_each_operation(served, op):
    served.upstream.add(f"/primary/v1{PATHS[op]}", openai_error(429, retry_after=7))
    if op == "rerank":
        with pytest.raises(httpx.HTTPStatusError) as caught:
            _call(served, op)
        response = caught.value.response
    else:
        with pytest.raises(openai.RateLimitError) as error:
            _call(served, op)
        response = error.value.response
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json()["error"]["message"].startswith("upstream 'primary' returned 429")
    assert len(served.requests("primary", op)) == 1


# -- the router's own checks ----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/images/generations", {"model": "images-only", "prompt": "x", "n": 11}, "n"),
        ("/images/generations", {"model": "images-only"}, "prompt"),
        ("/audio/speech", {"model": "speech-only", "input": 3, "voice": "a"}, "input"),
        ("/moderations", {"model": "moderations-only", "input": []}, "input"),
        ("/rerank", {"model": "rerank-only", "query": "q", "documents": []}, "documents"),
        (
            "/rerank",
            {"model": "rerank-only", "query": "q", "documents": ["a"], "top_n": 0},
            "top_n",
        ),
    ],
)
def test_a_bad_body_is_a_400_naming_the_field(served, path, body, param):
    answer = httpx.post(served.router.base_url + path, json=body, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == param
    assert not served.upstream.requests


def test_models_list_what_each_model_serves(served):
    models = {m.id: m for m in served.client.models.list()}
    assert models["images-only"].operations == [  # type: ignore[attr-defined]
        "chat",
        "completions",
        "embeddings",
        "images",
        "image_edits",
        "image_variations",
        "speech",
        "transcriptions",
        "translations",
        "moderations",
        "rerank",
        "responses",  # (served by translation to chat)
        "messages",
        "count_tokens",
        "input_tokens",
    ]
    one = httpx.get(served.router.base_url + "/models/rerank-only").json()
    assert "rerank" in one["operations"]


@pytest.mark.parametrize(
    ("path", "content_type", "limit"),
    [
        ("/audio/transcriptions", "multipart/form-data; boundary=b", 25 * 1024 * 1024),
        ("/audio/translations", "multipart/form-data; boundary=b", 25 * 1024 * 1024),
        ("/images/edits", "multipart/form-data; boundary=b", 50 * 1024 * 1024),
        ("/images/edits", "application/json", 50 * 1024 * 1024),
        ("/images/variations", "multipart/form-data; boundary=b", 5 * 1024 * 1024),
        ("/images/generations", "application/json", 4 * 1024 * 1024),
    ],
)
def test_each_operation_s_default_body_limit_is_its_own(served, path, content_type, limit):
    """25 MiB for audio, 50 MiB for image edits and 5 MiB for image variations (a 4 MB
    image), as OpenAI's own; 4 MiB for the rest: a body that says it is larger is a 413
    before any of it is read."""
    for size, status in ((limit + 1, 413), (limit, None)):
        with socket.create_connection(("127.0.0.1", served.router.port), timeout=10) as sock:
            sock.sendall(
                f"POST /v1{path} HTTP/1.1\r\nhost: x\r\ncontent-type: {content_type}\r\n"
                f"content-length: {size}\r\nconnection: close\r\n\r\n".encode()
            )
            sock.sendall(b"{" if content_type == "application/json" else b"--b\r\n")
            sock.shutdown(socket.SHUT_WR)  # (a body cut short: refused, but not as too large)
            answer = sock.recv(65536).split(b"\r\n", 1)[0]
        if status == 413:
            assert answer.endswith(b" 413 Request Entity Too Large"), answer
        else:
            assert b" 413 " not in answer, answer
    assert not served.upstream.requests
