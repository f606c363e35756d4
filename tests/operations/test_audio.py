"""Speech, transcriptions and translations through `llm-switchyard serve` with the official
`openai` SDK and fake OpenAI upstreams: audio streamed as it arrives, uploads sent again to
a fallback, every transcript format, and limits counted in seconds of audio."""

from __future__ import annotations

import hashlib
import threading

import httpx
import openai
import orjson
import pytest

from router.testing import Reply
from router.testing.media import UploadReader, openai_error, speech_reply, transcription_reply
from tests.operations.served import PATHS, SDK_DEPRECATED

# -- speech ---------------------------------------------------------------------------


def test_speech_streams_the_audio_as_it_arrives_with_its_content_type(served):
    audio = bytes(range(256)) * 64  # 16 KiB, sent in four pieces
    release = threading.Event()
    reply = speech_reply(audio, "audio/mpeg", chunk=4096)
    reply.release = release  # the pieces after the first wait until the client has one
    served.limited("speech", reply)
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
