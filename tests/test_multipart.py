"""multipart/form-data both ways, and what an upload costs: the parser reads a body however
it is cut into chunks, the body the router sends is what a server parses back, an upload
stays in memory only up to 1 MiB, and a WAV file's header gives its duration."""

from __future__ import annotations

import asyncio
import io
import wave

import httpx
import pytest

from router.limits.units import audio_seconds, image_cost, rerank_cost, wav_seconds
from router.upstream.multipart import (
    MultipartBody,
    MultipartError,
    MultipartParser,
    Part,
    boundary_of,
)
from router.upstream.spool import MEMORY_LIMIT, Upload


def _parse(body: bytes, boundary: bytes, step: int) -> list:
    """Events for `body` fed `step` bytes at a time, data joined per part."""
    parser = MultipartParser(boundary)
    out: list = []
    for at in range(0, len(body), step):
        for event in parser.feed(body[at : at + step]):
            if type(event) is bytes and out and type(out[-1]) is bytes:
                out[-1] += event
            else:
                out.append(event)
    parser.finish()
    return out


def _form() -> tuple[bytes, bytes]:
    """A body as httpx (what the OpenAI SDK uses) encodes it, with a file that contains
    near-delimiters."""
    data = b"\r\n--not-the-boundary\r\n" + bytes(range(256)) * 3 + b"\r\n-"
    request = httpx.Request(
        "POST",
        "http://x",
        data={"model": "whisper-1", "prompt": "caf\u00e9"},
        files={"file": ("voice \u00e9.wav", data, "audio/wav")},
    )
    boundary = boundary_of(request.headers["content-type"])
    assert boundary is not None
    return request.read(), boundary


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64, 100_000])
def test_the_parser_reads_a_body_however_it_is_cut(step):
    body, boundary = _form()
    events = _parse(body, boundary, step)
    assert events == [
        Part("model", None, None),
        b"whisper-1",
        None,
        Part("prompt", None, None),
        "caf\u00e9".encode(),
        None,
        Part("file", "voice \u00e9.wav", "audio/wav"),
        b"\r\n--not-the-boundary\r\n" + bytes(range(256)) * 3 + b"\r\n-",
        None,
    ]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx", "closing boundary"),
        (b"--b\r\nno-colon-here\r\n\r\nx\r\n--b--", "malformed"),
        (b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--", "no Content-Disposition"),
        (b"--bjunk\r\n", "garbage after a boundary"),
        (b"--b\r\n" + b"X-Long: " + b"a" * 20_000, "too long"),
    ],
)
def test_a_malformed_body_is_refused(body, problem):
    parser = MultipartParser(b"b")
    with pytest.raises(MultipartError, match=problem):
        parser.feed(body)
        parser.finish()


def test_boundaries_are_read_from_the_content_type():
    assert boundary_of('multipart/form-data; boundary="a b"') == b"a b"
    assert boundary_of("Multipart/Form-Data; charset=utf-8; boundary=xyz") == b"xyz"
    assert boundary_of("application/json") is None
    assert boundary_of("multipart/form-data") is None


def test_an_extended_filename_is_decoded():
    body = (
        b'--b\r\nContent-Disposition: form-data; name=file; filename="a.wav"; '
        b"filename*=UTF-8''%E2%82%AC.wav\r\n\r\nx\r\n--b--\r\n"
    )
    assert _parse(body, b"b", 5)[0] == Part("file", "\u20ac.wav", None)


def test_the_body_sent_upstream_parses_back_and_can_be_sent_again():
    upload = Upload("file", 'say "hi".wav', "audio/wav")
    for _ in range(3):
        upload.write(b"\x01" * 50_000)
    fields = {"model": "up-b", "file": upload, "timestamp_granularities[]": ["word", "segment"]}
    fields |= {"temperature": 0.5, "stream": False, "skip": None}
    body = MultipartBody(fields)

    async def read() -> bytes:
        return b"".join([chunk async for chunk in body])

    first, again = asyncio.run(read()), asyncio.run(read())
    assert first == again and len(first) == body.length == len(body)
    events = _parse(first, body.boundary.encode(), 4096)
    names = [(e.name, e.filename) for e in events if isinstance(e, Part)]
    assert names == [
        ("model", None),
        ("file", "say %22hi%22.wav"),
        ("timestamp_granularities[]", None),
        ("timestamp_granularities[]", None),
        ("temperature", None),
        ("stream", None),
    ]
    assert events[events.index(Part("file", "say %22hi%22.wav", "audio/wav")) + 1] == (
        b"\x01" * 150_000
    )
    assert b"false" in events and b"0.5" in events
    upload.close()


def test_an_upload_goes_to_a_temporary_file_past_the_memory_limit():
    upload = Upload("file", "a.mp3", None)
    upload.write(b"a" * (MEMORY_LIMIT - 10))
    assert not upload.on_disk
    upload.write(b"b" * 20)
    assert upload.on_disk and upload.size == MEMORY_LIMIT + 10
    assert upload.read_at(MEMORY_LIMIT - 12, 4) == b"aabb"
    assert upload.head == b"a" * 4096
    upload.close()
    upload.close()  # safe twice


def _wav(seconds: float, rate: int = 8000, channels: int = 2) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00" * int(seconds * rate) * 2 * channels)
    return buffer.getvalue()


def test_a_transcription_costs_seconds_of_audio():
    audio = _wav(2.5)
    assert wav_seconds(audio[:4096], len(audio)) == pytest.approx(2.5)
    upload = Upload("file", "a.wav", "audio/wav")
    upload.write(audio)
    assert audio_seconds(upload) == 3  # rounded up
    mp3 = Upload("file", "a.mp3", "audio/mpeg")
    mp3.write(b"\xff" * 40_000)  # not a WAV: 128 kbit/s
    assert audio_seconds(mp3) == 3
    streamed = audio[:40] + b"\xff\xff\xff\xff" + audio[44:]  # a data chunk of unknown size
    assert wav_seconds(streamed[:4096], len(streamed)) == pytest.approx(2.5)


def test_images_and_rerank_cost_their_own_units():
    assert image_cost({"prompt": "x"}) == 1000
    assert image_cost({"prompt": "x", "n": 3}) == 3000
    assert rerank_cost({"query": "abcd" * 2, "documents": ["abcd", {"text": "abcdabcd"}]}) == 5
