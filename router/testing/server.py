"""Run a real router for tests: uvicorn on a free loopback port, in a thread or a process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import uvicorn

from router.app import create_app
from router.graph import load_graph
from router.serving import uvicorn_options


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(
    url: str, timeout: float = 15.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"router exited with {process.returncode}")
        try:
            if httpx.get(url + "/health/readiness", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"router at {url} not ready after {timeout}s")


class RouterServer:
    """The router app under uvicorn in a background thread: fast to start, same code path."""

    def __init__(self, config_path: str | Path, environ: Mapping[str, str] | None = None) -> None:
        self.config_path = str(config_path)
        self.port = free_port()
        self.graph = load_graph(self.config_path, environ)
        self.app = create_app(self.graph)
        self._server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, **uvicorn_options())
        )
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self._server.run()  # the production event loop (see `router.serving`)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def start(self) -> RouterServer:
        self._thread.start()
        wait_ready(self.url)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    def __enter__(self) -> RouterServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def cli_command() -> str:
    """The `llm-router` console script installed beside this Python: what users run."""
    script = Path(sys.executable).with_name("llm-router")
    if not script.exists():
        raise RuntimeError(f"{script} is missing: install the project (pip install -e .)")
    return str(script)


class RouterProcess:
    """`llm-router serve` as its own process, for tests of the CLI, signals and replicas."""

    def __init__(
        self,
        config_path: str | Path,
        env: Mapping[str, str] | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.port = free_port()
        self.command = [
            cli_command(),
            "serve",
            "--config",
            str(config_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *(args or []),
        ]
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def start(self, timeout: float = 20.0) -> RouterProcess:
        self.process = subprocess.Popen(
            self.command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        wait_ready(self.url, timeout, self.process)
        return self

    def stop(self) -> tuple[bytes, bytes]:
        if self.process is None:
            return b"", b""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            out, err = self.process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
        return out, err

    def __enter__(self) -> RouterProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
