"""The half-open probe of a circuit breaker is never lost: when the probe request never
reaches the upstream (its provider's quota rejects it, makes it wait past its bound, the
limit backend is down and fails closed, or the client leaves while it waits), the next
request probes the target, which then serves again."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest

from router.testing import RouterProcess, chat_completion, closed_after_test, free_port, json_reply
from router.testing.fake_upstream import Received, Reply

A = "/a/v1/chat/completions"
B = "/b/v1/chat/completions"
MSGS = [{"role": "user", "content": "hi"}]
ADMIN = "admin-secret-probe"
HOLD_SECONDS = 1.5  # how long the `hold` model keeps provider a's one concurrency slot
CONFIG = """
server: {{auth: none, admin_key: {admin}{backend}}}
rate_limits:
  quota: {quota}
providers:
  a: {{plugin: openai, base_url: "{url}/a/v1", rate_limits: [quota]}}
  b: {{plugin: openai, base_url: "{url}/b/v1"}}
models:
  chat:
    targets: [{{provider: a, model: ma}}, {{provider: b, model: mb}}]
    retries: {{attempts: 0}}
    breaker: {{consecutive_failures: 1, failure_rate: null, open_for: 0.3}}
  hold:
    targets: [{{provider: a, model: slow}}]
    retries: {{attempts: 0, deadline: 30}}
"""
ONE_AT_A_TIME = "{{max_concurrent: 1, on_limit: {on_limit}, max_wait: {max_wait}}}"


class Upstreams:
    """Provider a fails until `a_up` is set (trips the breaker), and answers the `hold`
    model slowly; b always answers."""

    def __init__(self, fake) -> None:
        self.fake = fake
        self.a_up = False
        fake.set_default(A, self._a)
        fake.set_default(B, json_reply(chat_completion("from b", model="mb")))

    def _a(self, received: Received) -> Reply:
        if received.json()["model"] == "slow":
            reply = json_reply(chat_completion("held", model="slow"))
            reply.first_delay = HOLD_SECONDS
            return reply
        if not self.a_up:
            return json_reply({"error": {"message": "down"}}, 500)
        return json_reply(chat_completion("from a", model="ma"))

    def probes(self) -> int:
        """Requests for `chat` that reached provider a."""
        return sum(1 for r in self.fake.received(A) if r.json()["model"] == "ma")


def _ask(router) -> str:
    client = closed_after_test(
        openai.OpenAI(base_url=router.base_url, api_key="x", max_retries=0, timeout=10)
    )
    return client.chat.completions.create(model="chat", messages=MSGS).choices[0].message.content


def _breaker(router) -> str:
    response = httpx.get(router.url + "/admin/breakers", headers={"x-api-key": ADMIN})
    return {row["target"]: row for row in response.json()["data"]}["a/ma"]["state"]


def _until(condition: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _trip(router, upstreams: Upstreams) -> None:
    """Open a's breaker with one failure, then let open_for pass: the next request probes."""
    assert _ask(router) == "from b"
    assert upstreams.probes() == 1 and _breaker(router) != "closed"  # open, for open_for
    upstreams.a_up = True
    _until(lambda: _breaker(router) == "half_open", "open_for to pass")


def _hold_slot(router, upstreams: Upstreams) -> threading.Thread:
    """A request that keeps provider a's one concurrency slot for HOLD_SECONDS."""

    def hold() -> None:
        body = {"model": "hold", "messages": MSGS}
        assert httpx.post(router.base_url + "/chat/completions", json=body, timeout=30).is_success

    thread = threading.Thread(target=hold)
    thread.start()
    _until(lambda: any(r.json()["model"] == "slow" for r in upstreams.fake.received(A)), "hold")
    return thread


def _serves_again(router, upstreams: Upstreams) -> None:
    """The next request is the probe: it reaches a, which answers and closes the breaker."""
    assert _ask(router) == "from a"
    assert upstreams.probes() == 2
    assert _breaker(router) == "closed"
    assert [_ask(router) for _ in range(2)] == ["from a"] * 2


@pytest.mark.parametrize(
    ("on_limit", "max_wait"),
    [("reject", 10), ("wait", 0.3)],
    ids=["quota_rejects", "quota_wait_past_max_wait"],
)
def test_probe_refused_by_the_quota_is_released(fake_upstream, router_server, on_limit, max_wait):
    quota = ONE_AT_A_TIME.format(on_limit=on_limit, max_wait=max_wait)
    router = router_server(
        CONFIG.format(admin=ADMIN, backend="", quota=quota, url=fake_upstream.url)
    )
    upstreams = Upstreams(fake_upstream)
    _trip(router, upstreams)
    holder = _hold_slot(router, upstreams)

    with pytest.raises(openai.RateLimitError):  # the probe never reaches a
        _ask(router)
    stats = router.app.state.router.limiter.stats
    assert stats.waited == (1 if on_limit == "wait" else 0)  # waited in line, then gave up
    assert upstreams.probes() == 1
    holder.join(30)

    _serves_again(router, upstreams)


def test_probe_left_by_its_client_while_waiting_for_quota_is_released(
    fake_upstream, tmp_path: Path
):
    """Through `llm-switchyard serve`: the client gives up while its request waits in line."""
    quota = ONE_AT_A_TIME.format(on_limit="wait", max_wait=30)
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG.format(admin=ADMIN, backend="", quota=quota, url=fake_upstream.url))
    with RouterProcess(path) as router:
        upstreams = Upstreams(fake_upstream)
        _trip(router, upstreams)
        holder = _hold_slot(router, upstreams)

        body = {"model": "chat", "messages": MSGS}
        with pytest.raises(httpx.ReadTimeout):  # waiting in line for a's slot: give up
            httpx.post(router.base_url + "/chat/completions", json=body, timeout=0.4)
        holder.join(30)
        assert upstreams.probes() == 1  # the abandoned probe was never sent

        _serves_again(router, upstreams)


class ThrowawayRedis:
    """A redis-server of the test's own on a free port, to stop and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        _until(self.answers, "redis-server to start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture
def redis_server() -> Iterator[ThrowawayRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    pytest.importorskip("redis")
    server = ThrowawayRedis()
    try:
        yield server
    finally:
        server.stop()


def test_probe_refused_by_a_limit_backend_that_is_down_is_released(
    fake_upstream, router_server, redis_server
):
    redis_server.start()
    backend = (
        f', rate_limit_backend: {{url: "{redis_server.url}", '
        f'key_prefix: "probe-{uuid.uuid4().hex}"}}'
    )
    quota = "{requests_per_minute: 1000, on_error: closed}"
    router = router_server(
        CONFIG.format(admin=ADMIN, backend=backend, quota=quota, url=fake_upstream.url)
    )
    upstreams = Upstreams(fake_upstream)
    _trip(router, upstreams)

    redis_server.stop()  # the shared backend goes down; the quota fails closed
    with pytest.raises(openai.InternalServerError) as info:
        _ask(router)
    assert info.value.status_code == 503
    assert info.value.code == "rate_limit_backend_unavailable"
    assert upstreams.probes() == 1

    redis_server.start()  # back: the quota admits again after the router's 1 s pause
    _until(lambda: _answer_or_none(router) is not None, "the backend to be used again")
    assert upstreams.probes() == 2  # the probe went to a
    assert _breaker(router) == "closed"


def _answer_or_none(router) -> str | None:
    try:
        answer = _ask(router)
    except openai.InternalServerError:  # still failing closed
        return None
    assert answer == "from a"  # never b: a is probed as soon as the quota admits
    return answer
