"""Images, image edits, speech, transcriptions, translations, moderations and rerank through
`llm-switchyard serve`, with the
official `openai` SDK (an HTTP client for rerank, which the SDK lacks) and fake OpenAI
upstreams: each operation answers, fails over from a provider that answers 429 to another,
and passes on a 429's `Retry-After` when no target is left."""

from __future__ import annotations

import hashlib
import threading
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import orjson
import pytest

from router.testing import FakeUpstream, Reply, RouterProcess, closed_after_test
from router.testing.media import (
    PNG,
    PNG_B64,
    UploadReader,
    image_reply,
    moderation_reply,
    openai_error,
    rerank_reply,
    speech_reply,
    transcription_reply,
)

OPS = (
    "images",
    "image_edits",
    "speech",
    "transcriptions",
    "translations",
    "moderations",
    "rerank",
)
PATHS = {
    "images": "/images/generations",
    "image_edits": "/images/edits",
    "speech": "/audio/speech",
    "transcriptions": "/audio/transcriptions",
    "translations": "/audio/translations",
    "moderations": "/moderations",
    "rerank": "/rerank",
}
CONFIG = """
server:
  auth: none
providers:
  primary: {{plugin: openai, base_url: "{url}/primary/v1", api_key: sk-primary}}
  backup: {{plugin: openai, base_url: "{url}/backup/v1", api_key: sk-backup}}
models:
{models}
rate_limits:
  two-images: {{tokens_per_minute: 2000}}
  three-seconds: {{tokens_per_minute: 3}}
keys: {{}}
"""
RETRIES = "{attempts: 1, backoff_initial: 0.05, backoff_max: 0.05, max_retry_after: 5}"


def _models() -> str:
    lines = []
    for op in OPS:
        lines += [
            f"  {op}-fallback:",
            "    targets: [{provider: primary, model: up-a}, {provider: backup, model: up-b}]",
            f"    retries: {RETRIES}",
            f"  {op}-only:",
            "    targets: [{provider: primary, model: up-a}]",
            "    retries: {attempts: 0}",
        ]
    lines += [
        "  images-limited:",
        "    targets: [{provider: primary, model: up-a}]",
        "    rate_limits: [two-images]",
        "  image_edits-limited:",
        "    targets: [{provider: primary, model: up-a}]",
        "    rate_limits: [two-images]",
        "  image_edits-json-limited:",
        "    targets: [{provider: primary, model: up-a}]",
        "    rate_limits: [two-images]",
        "  transcriptions-limited:",
        "    targets: [{provider: primary, model: up-a}]",
        "    rate_limits: [three-seconds]",
        "  translations-limited:",
        "    targets: [{provider: primary, model: up-a}]",
        "    rate_limits: [three-seconds]",
    ]
    return "\n".join(lines)


class Served:
    def __init__(self, tmp: Path) -> None:
        self.upstream = FakeUpstream().start()
        config = tmp / "router.yaml"
        config.write_text(CONFIG.format(url=self.upstream.url, models=_models()))
        self.router = RouterProcess(config).start()
        self.client = closed_after_test(
            openai.OpenAI(base_url=self.router.base_url, api_key="x", max_retries=0, timeout=20)
        )
        self.wav = tmp / "speech.wav"
        _write_wav(self.wav, seconds=2.0)

    def stop(self) -> None:
        self.router.stop()
        self.upstream.stop()

    def requests(self, provider: str, op: str) -> list:
        return self.upstream.received(f"/{provider}/v1{PATHS[op]}")


def _write_wav(path: Path, seconds: float, rate: int = 16_000) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x01\x00" * int(seconds * rate))


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    served = Served(tmp_path_factory.mktemp("operations"))
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture(autouse=True)
def _fresh(served: Served) -> None:
    served.upstream.reset()


def _limited(served: Served, op: str, reply) -> None:
    """The primary answers `op` with OpenAI's 429 (a Retry-After longer than the route
    waits), then `reply` from the backup."""
    served.upstream.add(f"/primary/v1{PATHS[op]}", openai_error(429, retry_after=30))
    served.upstream.add(f"/backup/v1{PATHS[op]}", reply)


# -- images ---------------------------------------------------------------------------


def test_images_fall_over_to_the_backup_and_pass_b64_json_through(served):
    _limited(served, "images", image_reply(2, b64=True))
    raw = served.client.images.with_raw_response.generate(
        model="images-fallback", prompt="an otter", n=2, response_format="b64_json"
    )
    images = raw.parse()
    assert [i.b64_json for i in images.data] == [PNG_B64, PNG_B64]
    assert raw.headers["x-router-provider"] == "backup"
    assert raw.headers["x-router-attempts"] == "2"
    (sent,) = served.requests("backup", "images")
    assert sent.json() == {
        "model": "up-b",
        "prompt": "an otter",
        "n": 2,
        "response_format": "b64_json",
    }
    assert sent.headers["authorization"] == "Bearer sk-backup"


def test_images_pass_a_url_answer_through(served):
    served.upstream.add("/primary/v1/images/generations", image_reply(1, b64=False))
    images = served.client.images.generate(model="images-only", prompt="an otter")
    assert images.data[0].url == "https://images.example/fake.png"


def _image_events(task: str, partials: int) -> Reply:
    """OpenAI's streamed images answer: `partials` partial images, then the image."""
    events = [
        {"type": f"{task}.partial_image", "b64_json": PNG_B64, "partial_image_index": i}
        for i in range(partials)
    ]
    events.append({"type": f"{task}.completed", "b64_json": PNG_B64})
    shape = {"background": "opaque", "created_at": 1, "output_format": "png", "quality": "low"}
    frames = [
        b"event: "
        + e["type"].encode()
        + b"\ndata: "
        + orjson.dumps({**e, **shape, "size": "1024x1024"})
        + b"\n\n"
        for e in events
    ]
    return Reply(200, {"content-type": "text/event-stream"}, frames=frames, delay=0.01)


def test_streamed_images_pass_their_partial_images_through_after_a_fallback(served):
    """`stream` with `partial_images`: OpenAI's image events reach the SDK as they come."""
    _limited(served, "images", _image_events("image_generation", 2))
    stream = served.client.images.generate(
        model="images-fallback", prompt="an otter", stream=True, partial_images=2
    )
    kinds = [event.type for event in stream]
    assert kinds == ["image_generation.partial_image"] * 2 + ["image_generation.completed"]
    (sent,) = served.requests("backup", "images")
    assert sent.json() == {
        "model": "up-b",
        "prompt": "an otter",
        "stream": True,
        "partial_images": 2,
    }


# -- image edits ----------------------------------------------------------------------


def test_image_edits_send_every_image_and_the_mask_again_to_the_backup(served):
    _limited(served, "image_edits", image_reply(2, b64=True))
    first, second, mask = PNG, PNG + b"second", PNG + b"mask"
    raw = served.client.images.with_raw_response.edit(
        model="image_edits-fallback",
        image=[("a.png", first, "image/png"), ("b.png", second, "image/png")],
        mask=("m.png", mask, "image/png"),
        prompt="an otter in a hat",
        n=2,
        response_format="b64_json",
    )
    assert [i.b64_json for i in raw.parse().data] == [PNG_B64, PNG_B64]
    assert raw.headers["x-router-provider"] == "backup"
    assert raw.headers["x-router-attempts"] == "2"
    for provider, model in (("primary", "up-a"), ("backup", "up-b")):
        (sent,) = served.requests(provider, "image_edits")
        body = sent.body
        for name, filename, content in (
            ("image[]", "a.png", first),
            ("image[]", "b.png", second),
            ("mask", "m.png", mask),
        ):
            part = f'name="{name}"; filename="{filename}"\r\nContent-Type: image/png\r\n\r\n'
            assert part.encode() + content + b"\r\n" in body
        assert f'name="model"\r\n\r\n{model}\r\n'.encode() in body
        assert b'name="n"\r\n\r\n2\r\n' in body
        assert b'name="prompt"\r\n\r\nan otter in a hat\r\n' in body
    assert sent.headers["authorization"] == "Bearer sk-backup"


def test_a_streamed_image_edit_passes_its_events_through(served):
    served.upstream.add("/primary/v1/images/edits", _image_events("image_edit", 1))
    stream = served.client.images.edit(
        model="image_edits-only",
        image=("a.png", PNG, "image/png"),
        prompt="a hat",
        stream=True,
        partial_images=1,
    )
    assert [e.type for e in stream] == ["image_edit.partial_image", "image_edit.completed"]
    (sent,) = served.requests("primary", "image_edits")
    assert b'name="stream"\r\n\r\ntrue\r\n' in sent.body
    assert b'name="partial_images"\r\n\r\n1\r\n' in sent.body


def test_an_image_edit_by_reference_goes_as_json_and_counts_its_images(served):
    """OpenAI's other shape of an edit: JSON, with `images` (and a `mask`) as references."""
    _limited(served, "image_edits", image_reply(2, b64=True))
    body = {
        "model": "image_edits-fallback",
        "prompt": "an otter in a hat",
        "images": [{"image_url": "https://images.example/otter.png"}, {"file_id": "file-1"}],
        "mask": {"file_id": "file-2"},
        "n": 2,
    }
    answer = httpx.post(served.router.base_url + "/images/edits", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    assert [i["b64_json"] for i in answer.json()["data"]] == [PNG_B64, PNG_B64]
    assert answer.headers["x-router-provider"] == "backup"
    (sent,) = served.requests("backup", "image_edits")
    assert sent.headers["content-type"] == "application/json"
    assert sent.json() == {**body, "model": "up-b"}
    served.upstream.reset()  # (the primary's 429 stays queued while it is cooling down)
    served.upstream.set_default("/primary/v1/images/edits", image_reply(1))
    limited = {**body, "model": "image_edits-json-limited"}  # 2 images: 2,000 of 2,000
    first = httpx.post(served.router.base_url + "/images/edits", json=limited, timeout=10)
    assert first.status_code == 200
    again = httpx.post(served.router.base_url + "/images/edits", json=limited, timeout=10)
    assert again.status_code == 429 and "two-images" in again.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "x"}, "images"),
        ({"prompt": "x", "images": []}, "images"),
        ({"prompt": "x", "images": [{"url": "https://x.test/a.png"}]}, "images[0]"),
        ({"prompt": "x", "images": [{"file_id": "f"}], "mask": "m.png"}, "mask"),
        ({"prompt": "x", "images": [{"file_id": "f"}], "n": 11}, "n"),
        ({"prompt": "x", "images": [{"file_id": "f"}], "stream": "yes"}, "stream"),
        ({"images": [{"file_id": "f"}]}, "prompt"),
    ],
)
def test_an_image_edit_in_json_without_what_it_needs_is_a_400(served, body, param):
    body = {"model": "image_edits-only", **body}
    answer = httpx.post(served.router.base_url + "/images/edits", json=body, timeout=10)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param
    assert not served.upstream.requests


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"prompt": "x"}, "image"),
        ({"prompt": "x", "image": "a.png"}, "image"),  # a text field, not a file
        ({"prompt": "x", "n": "11"}, "n"),
        ({"prompt": "x", "n": "two"}, "n"),
        ({"prompt": "x", "stream": "yes"}, "stream"),
        ({}, "prompt"),
    ],
)
def test_an_image_edit_form_without_what_it_needs_is_a_400(served, fields, param):
    parts = {"model": (None, "image_edits-only")}
    parts.update({name: (None, value) for name, value in fields.items()})
    if param != "image":
        parts["image"] = ("a.png", PNG, "image/png")
    answer = httpx.post(served.router.base_url + "/images/edits", files=parts, timeout=10)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param
    assert not served.upstream.requests


# -- speech ---------------------------------------------------------------------------


def test_speech_streams_the_audio_as_it_arrives_with_its_content_type(served):
    audio = bytes(range(256)) * 64  # 16 KiB, sent in four pieces
    release = threading.Event()
    reply = speech_reply(audio, "audio/mpeg", chunk=4096)
    reply.release = release  # the pieces after the first wait until the client has one
    _limited(served, "speech", reply)
    with served.client.audio.speech.with_streaming_response.create(
        model="speech-fallback", voice="alloy", input="Hello there"
    ) as response:
        assert response.headers["content-type"] == "audio/mpeg"
        assert response.headers["x-router-provider"] == "backup"
        pieces = response.iter_bytes(4096)
        timer = threading.Timer(10, release.set)  # (a router that buffered would wait for it)
        timer.start()
        first = next(pieces)
        assert not release.is_set()  # it came while the upstream still held the rest
        release.set()
        timer.cancel()
        rest = b"".join(pieces)
    assert first + rest == audio
    (sent,) = served.requests("backup", "speech")
    assert sent.json()["model"] == "up-b" and sent.headers["accept"] == "*/*"


def test_speech_cut_short_by_the_upstream_is_a_truncated_answer(served):
    reply = speech_reply(b"\xff" * 16384, "audio/wav", chunk=4096)
    reply.drop_after_frames = 2  # the connection drops after 8 KiB
    served.upstream.add("/primary/v1/audio/speech", reply)
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream(
            "POST",
            served.router.base_url + "/audio/speech",
            json={"model": "speech-only", "voice": "alloy", "input": "hi"},
            timeout=10,
        ) as response,
    ):
        assert response.status_code == 200
        b"".join(response.iter_bytes())
    line = served.router.wait_for_line(
        lambda raw: b'"path":"/v1/audio/speech"' in raw and b"stream_failed" in raw
    )
    event = orjson.loads(line)
    assert event["bytes_sent"] == 8192 and event["error"] == "upstream_connection_error"


# -- transcriptions -------------------------------------------------------------------


def test_transcriptions_send_the_file_again_to_the_backup(served):
    reader = UploadReader()
    served.upstream.set_streaming("/backup/v1/audio/transcriptions", reader)
    served.upstream.add("/primary/v1/audio/transcriptions", openai_error(429, retry_after=30))
    with served.wav.open("rb") as audio:
        raw = served.client.audio.transcriptions.with_raw_response.create(
            model="transcriptions-fallback", file=audio, language="en"
        )
    size = served.wav.stat().st_size
    digest = hashlib.sha256(served.wav.read_bytes()).hexdigest()
    assert digest.encode() not in served.requests("primary", "transcriptions")[0].body
    (upload,) = reader.uploads  # the backup got the same file, whole
    assert (upload.size, upload.sha256, upload.filename) == (size, digest, "speech.wav")
    assert upload.fields == {"model": "up-b", "language": "en"}
    assert raw.headers["x-router-provider"] == "backup"
    assert raw.parse().text == f"{size} bytes heard"


@pytest.mark.parametrize("response_format", ["json", "text", "srt", "verbose_json", "vtt"])
def test_transcriptions_answer_in_each_format(served, response_format):
    reader = UploadReader()
    served.upstream.set_streaming("/primary/v1/audio/transcriptions", reader)
    with served.wav.open("rb") as audio:
        raw = served.client.audio.transcriptions.with_raw_response.create(
            model="transcriptions-only", file=audio, response_format=response_format
        )
    text = raw.parse()
    (upload,) = reader.uploads
    assert upload.fields == {"model": "up-a", "response_format": response_format}
    expected = f"{served.wav.stat().st_size} bytes heard"
    if response_format in ("json", "verbose_json"):
        assert raw.headers["content-type"] == "application/json"
        assert text.text == expected
    else:
        assert raw.headers["content-type"] == "text/plain; charset=utf-8"
        assert expected in text
        if response_format == "srt":
            assert text.startswith("1\n00:00:00,000 --> ")
        if response_format == "vtt":
            assert text.startswith("WEBVTT")


# The SDK marks `audio.translations` deprecated; OpenAI still serves it, and so does the router.
SDK_DEPRECATED = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")


@SDK_DEPRECATED
@pytest.mark.parametrize("response_format", ["json", "text", "srt", "verbose_json", "vtt"])
def test_translations_send_the_file_again_to_the_backup_in_each_format(served, response_format):
    reader = UploadReader()
    served.upstream.set_streaming("/backup/v1/audio/translations", reader)
    served.upstream.add("/primary/v1/audio/translations", openai_error(429, retry_after=30))
    with served.wav.open("rb") as audio:
        raw = served.client.audio.translations.with_raw_response.create(
            model="translations-fallback", file=audio, response_format=response_format
        )
    text = raw.parse()
    size = served.wav.stat().st_size
    (upload,) = reader.uploads  # the backup got the same file, whole
    digest = hashlib.sha256(served.wav.read_bytes()).hexdigest()
    assert (upload.size, upload.sha256, upload.filename) == (size, digest, "speech.wav")
    assert upload.fields == {"model": "up-b", "response_format": response_format}
    assert raw.headers["x-router-provider"] == "backup"
    expected = f"{size} bytes heard"
    assert (text.text if response_format.endswith("json") else text).count(expected) == 1


def test_a_streamed_transcription_passes_its_events_through(served):
    events = [
        b'data: {"type":"transcript.text.delta","delta":"Hel"}\n\n',
        b'data: {"type":"transcript.text.done","text":"Hello"}\n\n',
    ]
    reply = Reply(200, {"content-type": "text/event-stream"}, frames=list(events), delay=0.01)
    served.upstream.add("/primary/v1/audio/transcriptions", reply)
    with served.wav.open("rb") as audio:
        stream = served.client.audio.transcriptions.create(
            model="transcriptions-only", file=audio, stream=True
        )
        kinds = [event.type for event in stream]
    assert kinds == ["transcript.text.delta", "transcript.text.done"]
    (sent,) = served.requests("primary", "transcriptions")
    assert b'name="stream"\r\n\r\ntrue\r\n' in sent.body


@SDK_DEPRECATED
@pytest.mark.parametrize("op", ["transcriptions", "translations"])
def test_a_transcription_limit_counts_seconds_of_audio(served, op):
    served.upstream.set_default(f"/primary/v1{PATHS[op]}", transcription_reply("ok", "json"))
    api = getattr(served.client.audio, op)
    with served.wav.open("rb") as audio:  # 2 s of a 3-second budget
        api.create(model=f"{op}-limited", file=audio)
    with served.wav.open("rb") as audio, pytest.raises(openai.RateLimitError) as caught:
        api.create(model=f"{op}-limited", file=audio)
    assert int(caught.value.response.headers["retry-after"]) >= 1
    assert "three-seconds" in caught.value.message
    assert len(served.requests("primary", op)) == 1


# -- moderations and rerank -----------------------------------------------------------


def test_moderations_fall_over_to_the_backup(served):
    _limited(served, "moderations", moderation_reply(["violence"]))
    result = served.client.moderations.create(model="moderations-fallback", input="I will")
    assert result.results[0].flagged and result.results[0].categories.violence
    assert served.requests("backup", "moderations")[0].json()["model"] == "up-b"


def test_rerank_falls_over_to_the_backup(served):
    _limited(served, "rerank", rerank_reply([0.1, 0.9]))
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


def test_an_images_limit_counts_images(served):
    served.upstream.set_default("/primary/v1/images/generations", image_reply(1))
    served.client.images.generate(model="images-limited", prompt="x", n=2)  # 2,000 of 2,000
    with pytest.raises(openai.RateLimitError) as caught:
        served.client.images.generate(model="images-limited", prompt="x")
    assert "two-images" in caught.value.message


def test_an_images_limit_counts_the_images_an_edit_asks_for(served):
    served.upstream.set_default("/primary/v1/images/edits", image_reply(1))
    image = ("a.png", PNG, "image/png")
    served.client.images.edit(model="image_edits-limited", image=image, prompt="x", n=2)
    with pytest.raises(openai.RateLimitError) as caught:  # ("2" in the form: 2,000 of 2,000)
        served.client.images.edit(model="image_edits-limited", image=image, prompt="x")
    assert "two-images" in caught.value.message
    assert len(served.requests("primary", "image_edits")) == 1


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


def test_a_transcription_without_a_file_or_as_json_is_a_400(served):
    url = served.router.base_url + "/audio/transcriptions"
    text_parts = {"model": (None, "transcriptions-only"), "file": (None, "speech.wav")}
    as_text = httpx.post(url, files=text_parts)
    assert as_text.status_code == 400 and as_text.json()["error"]["param"] == "file"
    as_json = httpx.post(url, json={"model": "transcriptions-only"})
    assert as_json.status_code == 400
    assert "multipart/form-data" in as_json.json()["error"]["message"]
    broken = httpx.post(
        url,
        content=b"--b\r\nContent-Disposition: form-data; name=model\r\n\r\nx",
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert broken.status_code == 400
    assert "closing boundary" in broken.json()["error"]["message"]
    assert not served.upstream.requests


def test_models_list_what_each_model_serves(served):
    models = {m.id: m for m in served.client.models.list()}
    assert models["images-only"].operations == [  # type: ignore[attr-defined]
        "chat",
        "completions",
        "embeddings",
        "images",
        "image_edits",
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
