"""Audio uploads through `llm-switchyard serve`: a 50 MB file is transcribed while the router's
memory stays flat (the file is spooled to a temporary file as it arrives, and read from it
as it is sent on), the per-operation body limit answers 413, and no upload outlives its
request."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from router.testing import FakeUpstream, RouterProcess, closed_after_test
from router.testing.media import UploadReader

MB = 1024 * 1024
CONFIG = """
server:
  auth: none
  max_body_bytes_by_operation: {{transcriptions: {limit}}}
providers:
  whisper: {{plugin: openai, base_url: "{url}/v1"}}
models:
  whisper:
    targets: [{{provider: whisper, model: whisper-1}}]
keys: {{}}
"""


class Served:
    def __init__(self, tmp: Path, limit: int) -> None:
        self.upstream = FakeUpstream().start()
        self.reader = UploadReader()
        self.upstream.set_streaming("/v1/audio/transcriptions", self.reader)
        config = tmp / "router.yaml"
        config.write_text(CONFIG.format(url=self.upstream.url, limit=limit))
        self.router = RouterProcess(config).start()
        self.url = self.router.base_url + "/audio/transcriptions"

    @property
    def pid(self) -> int:
        assert self.router.process is not None
        return self.router.process.pid

    def rss(self) -> int:
        """The router's resident memory, in bytes."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def spooled(self) -> int:
        """The temporary files the router holds open (uploads spooled to disk)."""
        folder, held = tempfile.gettempdir(), 0
        for fd in os.listdir(f"/proc/{self.pid}/fd"):
            with contextlib.suppress(OSError):  # (closed meanwhile)
                held += os.readlink(f"/proc/{self.pid}/fd/{fd}").startswith(folder + "/")
        return held

    def stop(self) -> None:
        self.router.stop()
        self.upstream.stop()


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Iterator[Served]:
    served = Served(tmp_path_factory.mktemp("big-uploads"), 64 * MB)
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Iterator[Served]:
    served = Served(tmp_path_factory.mktemp("small-uploads"), 1 * MB)
    try:
        yield served
    finally:
        served.stop()


def _audio(path: Path, size: int) -> Path:
    """A file of `size` bytes of noise, written in pieces (so is its digest, later)."""
    with path.open("wb") as out:
        for _ in range(size // MB):
            out.write(os.urandom(MB))
    return path


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while piece := source.read(MB):
            digest.update(piece)
    return digest.hexdigest()


def test_memory_stays_flat_while_a_50_mb_upload_is_transcribed(big, tmp_path):
    client = closed_after_test(
        openai.OpenAI(base_url=big.router.base_url, api_key="x", max_retries=0, timeout=60)
    )
    warm = _audio(tmp_path / "warm.mp3", 2 * MB)  # the code paths run once before measuring
    with warm.open("rb") as audio:
        client.audio.transcriptions.create(model="whisper", file=audio)
    assert big.spooled() == 0
    baseline = big.rss()
    peak, spooled = baseline, 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, spooled
        while not done.wait(0.005):
            peak = max(peak, big.rss())
            spooled = max(spooled, big.spooled())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    path = _audio(tmp_path / "long.mp3", 50 * MB)
    try:
        with path.open("rb") as audio:
            text = client.audio.transcriptions.create(model="whisper", file=audio)
    finally:
        done.set()
        sampler.join(5)
    upload = big.reader.uploads[-1]
    assert (upload.size, upload.sha256) == (50 * MB, _digest(path))
    assert text.text == f"{50 * MB} bytes heard"
    growth = peak - baseline
    print(f"router RSS {baseline / MB:.1f} MB, peak {peak / MB:.1f} MB (+{growth / MB:.1f} MB)")
    assert growth < 12 * MB  # the file is 50 MB
    assert spooled == 1  # it was held in a temporary file ...
    assert big.spooled() == 0  # ... which is gone once the answer is


def test_an_upload_over_the_operations_limit_is_a_413(small):
    two_mb = b"\x00" * (2 * MB)
    answer = httpx.post(
        small.url, files={"file": ("a.wav", two_mb, "audio/wav")}, data={"model": "whisper"}
    )
    assert answer.status_code == 413
    assert answer.json()["error"]["message"] == f"request body is larger than {MB} bytes"

    def chunked() -> Iterator[bytes]:  # no Content-Length: refused as it arrives
        yield b"--b\r\nContent-Disposition: form-data; name=file; filename=a.wav\r\n\r\n"
        for _ in range(4):
            yield b"\x00" * (MB // 2)
        yield b"\r\n--b--\r\n"

    try:
        answer = httpx.post(
            small.url,
            content=chunked(),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
    except httpx.TransportError:
        pass  # the router may close the connection while the client still sends
    else:
        assert answer.status_code == 413
    assert not small.reader.uploads  # nothing reached the upstream
    deadline = time.monotonic() + 5
    while small.spooled() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert small.spooled() == 0  # the part spooled before the limit was passed is deleted


def test_a_large_default_limit_applies_to_transcriptions_only(small):
    """`max_body_bytes` (4 MiB by default) still bounds the JSON operations."""
    big_prompt = "x" * (5 * MB)
    answer = httpx.post(
        small.router.base_url + "/images/generations",
        json={"model": "whisper", "prompt": big_prompt},
    )
    assert answer.status_code == 413


def test_a_form_of_too_many_parts_or_too_much_text_is_refused(big):
    many = {f"field{i}": (None, "x") for i in range(257)}
    answer = httpx.post(big.url, files={"model": (None, "whisper"), **many})
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "a form may have at most 256 parts"
    wordy = {"prompt": (None, "x" * (MB // 2)), "language": (None, "y" * (MB // 2 + 1))}
    answer = httpx.post(big.url, files={"model": (None, "whisper"), **wordy})
    assert answer.status_code == 413
    assert answer.json()["error"]["message"] == (
        "the form's text fields are larger than 1048576 bytes"
    )
    assert big.spooled() == 0
    assert not big.reader.uploads or big.reader.uploads[-1].fields.get("language") is None
