"""The router's own HTTP/1.1 client to its upstreams, through `llm-switchyard serve`, against an
upstream that writes its answers byte by byte as servers do: kept-alive connections, the
provider's connection limit, an idle connection the upstream dropped, every way an answer's
length is told (content-length, chunks, the end of the connection), compressed answers,
`100 Continue`, heads with line ends of LF alone, malformed and cut answers, and TLS with
the certificate verified."""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import subprocess
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest

from router.testing import RouterProcess, chat_chunks, chat_completion, closed_after_test

MESSAGES = [{"role": "user", "content": "hi"}]
Script = Callable[[socket.socket, dict[str, object], int], None]  # (conn, body, n-th on conn)
Serve = Callable[..., tuple["ScriptedUpstream", openai.OpenAI]]


def _answer(body: bytes, *extra: str, status: str = "200 OK") -> bytes:
    head = [f"HTTP/1.1 {status}", "content-type: application/json", *extra]
    if not any(line.lower().startswith(("content-length", "transfer-encoding")) for line in extra):
        head.append(f"content-length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _chat(text: str = "hello") -> bytes:
    return json.dumps(chat_completion(text, usage=(3, 1))).encode()


class ScriptedUpstream:
    """An upstream on loopback that answers each request as `script` writes it, and counts
    the connections it accepted and how many were open at once."""

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self.script, self.tls = script, tls
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.open_now = self.most_open = 0
        self.requests: list[tuple[int, dict[str, object], dict[str, str]]] = []
        self._lock = threading.Lock()
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/v1"

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            self.connections += 1
            number = self.connections
            self.open_now += 1
            self.most_open = max(self.most_open, self.open_now)
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            reader = conn.makefile("rb")
            for nth in range(1, 1000):
                line = reader.readline()
                if not line:
                    return
                headers: dict[str, str] = {}
                while (header := reader.readline().strip()) != b"":
                    name, _, value = header.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = json.loads(reader.read(int(headers.get("content-length", "0"))) or b"{}")
                with self._lock:
                    self.requests.append((number, body, headers))
                self.script(conn, body, nth)
        except (OSError, ssl.SSLError):
            return
        finally:
            with self._lock:
                self.open_now -= 1
            conn.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    started: list[tuple[ScriptedUpstream, RouterProcess]] = []

    def start(
        script: Script, provider: str = "", tls: ssl.SSLContext | None = None, **env: str
    ) -> tuple[ScriptedUpstream, openai.OpenAI]:
        upstream = ScriptedUpstream(script, tls)
        path = tmp_path / "router.yaml"
        path.write_text(
            textwrap.dedent(
                f"""
                server: {{auth: none, watch_config: false}}
                providers:
                  up: {{plugin: openai, base_url: "{upstream.url}", api_key: sk-up{provider}}}
                models:
                  m: {{targets: [{{provider: up, model: up-model}}], retries: {{attempts: 0}}}}
                """
            )
        )
        router = RouterProcess(path, env=env).start()
        started.append((upstream, router))
        client = openai.OpenAI(base_url=router.base_url, api_key="none", max_retries=0)
        return upstream, closed_after_test(client)

    yield start
    for upstream, router in started:
        router.stop()
        upstream.close()


def _ask(client: openai.OpenAI) -> str:
    answer = client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
    return answer.choices[0].message.content or ""


def test_one_kept_alive_connection_serves_request_after_request(serve: Serve) -> None:
    upstream, client = serve(lambda conn, body, nth: conn.sendall(_answer(_chat(f"n{nth}"))))
    answers = [_ask(client) for _ in range(20)]
    assert answers == [f"n{i}" for i in range(1, 21)]
    assert upstream.connections == 1
    sent = upstream.requests[0][2]
    assert sent["host"] == f"127.0.0.1:{upstream.port}"
    assert sent["authorization"] == "Bearer sk-up"
    assert sent["content-type"] == "application/json"


def test_the_providers_connection_limit_bounds_the_upstream_connections(serve: Serve) -> None:
    def slow(conn: socket.socket, body: dict[str, object], nth: int) -> None:
        time.sleep(0.3)
        conn.sendall(_answer(_chat()))

    upstream, client = serve(slow, provider=", max_connections: 2")
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(_ask(client))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == ["hello"] * 8
    assert upstream.most_open == 2
    assert upstream.connections == 2


def test_a_request_on_a_connection_the_upstream_dropped_is_sent_again_on_a_new_one(
    serve: Serve,
) -> None:
    """The second request of each connection meets a connection closed without an answer, as
    when a server closes an idle connection just as a request arrives on it."""

    def drops_the_second(conn: socket.socket, body: dict[str, object], nth: int) -> None:
        if nth == 2:
            conn.shutdown(socket.SHUT_RDWR)
            return
        conn.sendall(_answer(_chat(f"n{nth}")))

    upstream, client = serve(drops_the_second)
    assert [_ask(client) for _ in range(3)] == ["n1", "n1", "n1"]
    assert upstream.connections == 3
    assert len(upstream.requests) == 5  # each lost second request was sent once more


def test_a_fresh_connection_closed_without_an_answer_is_a_502(serve: Serve) -> None:
    upstream, client = serve(lambda conn, body, nth: conn.shutdown(socket.SHUT_RDWR))
    with pytest.raises(openai.APIStatusError) as failed:
        _ask(client)
    assert failed.value.status_code == 502
    assert "upstream 'up'" in failed.value.message
    assert len(upstream.requests) == 1  # not sent again: it was not a kept-alive connection


@pytest.mark.parametrize(
    "shape",
    [
        *("chunked", "gzip", "deflate", "gzip-chunked", "until-close", "continue", "no-reason"),
        *("lf-only", "lf-only-chunked"),
    ],
)
def test_every_framing_of_an_answer_is_read(serve: Serve, shape: str) -> None:
    def answer(conn: socket.socket, body: dict[str, object], nth: int) -> None:
        data = _chat("framed")
        if shape == "chunked":
            pieces = [data[:10], data[10:]]
            chunked = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
            conn.sendall(_answer(chunked, "transfer-encoding: chunked"))
        elif shape == "gzip":
            conn.sendall(_answer(gzip.compress(data), "content-encoding: gzip"))
        elif shape == "deflate":
            import zlib

            conn.sendall(_answer(zlib.compress(data), "content-encoding: deflate"))
        elif shape == "gzip-chunked":
            packed = gzip.compress(data)
            framed = b"%x\r\n%b\r\n0\r\n\r\n" % (len(packed), packed)
            conn.sendall(_answer(framed, "content-encoding: gzip", "transfer-encoding: chunked"))
        elif shape == "until-close":
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-type: application/json\r\n\r\n"
            )
            time.sleep(0.05)
            conn.sendall(data)
            conn.shutdown(socket.SHUT_RDWR)
        elif shape == "continue":
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n" + _answer(data))
        elif shape == "lf-only":  # line ends of LF alone, as small servers write them
            conn.sendall(_answer(data).replace(b"\r\n", b"\n"))
        elif shape == "lf-only-chunked":  # and spaces after a chunk's size
            chunked = b"%x  \r\n%b\r\n0\r\n\r\n" % (len(data), data)
            head = _answer(b"", "transfer-encoding: chunked").replace(b"\r\n", b"\n")
            conn.sendall(head + chunked)
        else:
            conn.sendall(_answer(data, status="200"))

    upstream, client = serve(answer)
    assert _ask(client) == "framed"
    assert _ask(client) == "framed"  # and the connection, where kept, serves the next
    if shape != "until-close":
        assert upstream.connections == 1
    assert upstream.requests[0][2]["accept-encoding"] == "gzip, deflate"


@pytest.mark.parametrize("fault", ["garbage", "cut-body", "bad-gzip", "cut-chunks"])
def test_a_broken_answer_is_a_502_and_the_next_request_is_served(serve: Serve, fault: str) -> None:
    seen: list[int] = []

    def answer(conn: socket.socket, body: dict[str, object], nth: int) -> None:
        seen.append(nth)
        if len(seen) > 1:
            conn.sendall(_answer(_chat("fine")))
        elif fault == "garbage":
            conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
            conn.shutdown(socket.SHUT_RDWR)
        elif fault == "cut-body":
            conn.sendall(_answer(_chat())[:-10])
            conn.shutdown(socket.SHUT_RDWR)
        elif fault == "bad-gzip":
            conn.sendall(_answer(b"not gzip at all", "content-encoding: gzip"))
        else:
            conn.sendall(_answer(b'5\r\n{"id"\r\n', "transfer-encoding: chunked"))
            conn.shutdown(socket.SHUT_RDWR)

    _, client = serve(answer)
    with pytest.raises(openai.APIStatusError) as failed:
        _ask(client)
    assert failed.value.status_code == 502
    assert "upstream 'up'" in failed.value.message
    assert _ask(client) == "fine"


@pytest.mark.parametrize("framing", ["chunked", "until-close"])
def test_a_stream_is_relayed_whatever_its_framing(serve: Serve, framing: str) -> None:
    frames = [
        b"data: " + json.dumps(f).encode() + b"\n\n"
        for f in chat_chunks(["a", "b", "c"], done=False)
    ]
    frames.append(b"data: [DONE]\n\n")

    def answer(conn: socket.socket, body: dict[str, object], nth: int) -> None:
        head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        if framing == "chunked":
            conn.sendall((head + "transfer-encoding: chunked\r\n\r\n").encode())
            for frame in frames[:-1]:
                conn.sendall(b"%x\r\n%b\r\n" % (len(frame), frame))
                time.sleep(0.01)
            # [DONE] and the body's end together, as upstreams send them: the router reads the
            # end within its 50 ms drain however loaded the machine running the tests is.
            conn.sendall(b"%x\r\n%b\r\n0\r\n\r\n" % (len(frames[-1]), frames[-1]))
        else:
            conn.sendall((head + "connection: close\r\n\r\n").encode())
            for frame in frames:
                conn.sendall(frame)
                time.sleep(0.01)
            conn.shutdown(socket.SHUT_RDWR)

    upstream, client = serve(answer)
    for _ in range(2):
        stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == "abc"
        time.sleep(0.2)  # (the router reads the body's end just after the client's last frame)
    assert upstream.connections == (1 if framing == "chunked" else 2)


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_an_https_upstream_is_reached_over_tls_with_its_certificate_verified(
    serve: Serve, tmp_path: Path
) -> None:
    cert, key = _certificate(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    upstream, client = serve(
        lambda conn, body, nth: conn.sendall(_answer(_chat("secret"))),
        tls=tls,
        SSL_CERT_FILE=str(cert),
    )
    assert _ask(client) == "secret"
    assert _ask(client) == "secret"
    assert upstream.connections == 1

    untrusted, other = serve(lambda conn, body, nth: conn.sendall(_answer(_chat())), tls=tls)
    with pytest.raises(openai.APIStatusError) as failed:
        _ask(other)
    assert failed.value.status_code == 502
    assert "SSL" in failed.value.message or "Certificate" in failed.value.message
    assert not untrusted.requests  # nothing was sent to an upstream not proven to be it


def test_the_idle_limit_counts_from_the_last_chunk_however_many_came_before(
    serve: Serve,
) -> None:
    """Chunks 0.15 s apart for 1.2 s under an idle limit of 0.5 s, then silence: the stream
    is relayed whole and fails 0.5 s after its last chunk (the idle timer is kept across
    chunks and moved on when it fires early, not armed per chunk; firing at its first
    deadline would cut the stream after 0.5 s)."""
    frames = [
        b"data: " + json.dumps(f).encode() + b"\n\n"
        for f in chat_chunks([f"w{i} " for i in range(8)], usage=None, done=False)
    ]
    sent: list[float] = []

    def answer(conn: socket.socket, body: dict[str, object], nth: int) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n")
        conn.sendall(b"transfer-encoding: chunked\r\n\r\n")
        for frame in frames:
            conn.sendall(b"%x\r\n%b\r\n" % (len(frame), frame))
            sent.append(time.monotonic())
            time.sleep(0.15)
        time.sleep(3)  # silence: longer than the idle limit

    _, client = serve(answer, provider=", timeouts: {idle: 0.5}")
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    text = ""
    with pytest.raises(openai.APIError) as failed:
        for chunk in stream:
            text += "".join(c.delta.content or "" for c in chunk.choices)
    failed_at = time.monotonic()
    assert text == "".join(f"w{i} " for i in range(8))
    assert "stalled for 0.5s" in failed.value.message
    assert 0.4 <= failed_at - sent[-1] < 2.5
