"""Run a real router for tests: uvicorn on a free loopback port, in a thread or a process."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import httpx
import uvicorn
from starlette.applications import Starlette

from router.graph.load import load_graph
from router.http import edge, gctune, malloctune
from router.http.app import create_app
from router.http.serving import uvicorn_options


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(
    url: str, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None
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


@functools.cache
def _tune_process_once() -> None:
    """The collector and malloc settings `serve` applies (`router.http.gctune`,
    `malloctune`), once per test process as once per served process: frozen again at each
    server, objects of earlier tests that are garbage in cycles would never be collected."""
    gctune.tune()
    malloctune.tune()


class RouterServer:
    """The router app under uvicorn in a background thread: fast to start, same code path,
    same settings as `llm-switchyard serve` (event loop, HTTP parser, collector, malloc)."""

    def __init__(
        self,
        config_path: str | Path,
        environ: Mapping[str, str] | None = None,
        *,
        customize: Callable[[Starlette], None] | None = None,
        **server: Any,
    ) -> None:
        """`customize(app)` runs before the server starts (to add middleware, as an
        application embedding the router would); `server` overrides uvicorn settings (such
        as `root_path`)."""
        self.config_path = str(config_path)
        self.port = free_port()
        self.graph = load_graph(self.config_path, environ)
        # The config's limits on headers and connections, as `serve` sets them before it
        # accepts anything (per process: the servers of one test share the latest).
        edge.configure(edge.EdgeLimits.of(self.graph.config.server))
        self.app = create_app(self.graph)
        if customize is not None:
            customize(self.app)
        options = {**uvicorn_options(), **server}
        self._server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, **options)
        )
        self._thread = threading.Thread(target=self._run, daemon=True)
        _tune_process_once()

    def _run(self) -> None:
        self._server.run()  # the production event loop (see `router.http.serving`)

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
    """The `llm-switchyard` console script installed beside this Python: what users run."""
    script = Path(sys.executable).with_name("llm-switchyard")
    if not script.exists():
        raise RuntimeError(f"{script} is missing: install the project (pip install -e .)")
    return str(script)


class RouterProcess:
    """`llm-switchyard serve` as its own process, for tests of the CLI, signals and replicas."""

    def __init__(
        self,
        config_path: str | Path,
        env: Mapping[str, str] | None = None,
        args: list[str] | None = None,
        cwd: str | Path | None = None,
    ) -> None:
        self.port = free_port()
        self.cwd = cwd  # the working directory (default: this process's)
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
        self._out: _PipeReader | None = None
        self._err: _PipeReader | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def start(self, timeout: float = 60.0) -> RouterProcess:
        """Start and wait until ready: generous, since on a loaded machine several workers
        can take many seconds to import and load, and only a broken start waits it out."""
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self.cwd,
        )
        self._out, self._err = _PipeReader(self.process.stdout), _PipeReader(self.process.stderr)
        try:
            wait_ready(self.url, timeout, self.process)
        except BaseException:
            self.stop()  # not left running, nor its pipes open, when it never got ready
            raise
        return self

    def stderr_lines(self) -> list[bytes]:
        """The lines the router has written to stderr so far (its logs), read as they come."""
        return self._err.lines() if self._err is not None else []

    def wait_for_line(self, predicate: Callable[[bytes], bool], timeout: float = 10.0) -> bytes:
        """The first stderr line `predicate` accepts, waiting up to `timeout` seconds for it."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.stderr_lines():
                if predicate(line):
                    return line
            if time.monotonic() > deadline:
                raise TimeoutError(f"no such line on the router's stderr after {timeout}s")
            time.sleep(0.02)

    def stop(self) -> tuple[bytes, bytes]:
        """Stop the router (SIGTERM; SIGKILL 15 s later) and return its stdout and stderr."""
        if self.process is None:
            return b"", b""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        assert self._out is not None and self._err is not None
        return self._out.rest(), self._err.rest()

    def __enter__(self) -> RouterProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _PipeReader:
    """Reads a child's pipe line by line in a thread, so that it never fills up and its
    lines can be looked at while the child runs."""

    def __init__(self, pipe: IO[bytes] | None) -> None:
        self._lines: list[bytes] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe: IO[bytes] | None) -> None:
        if pipe is None:
            return
        with pipe:
            for line in pipe:
                with self._lock:
                    self._lines.append(line)

    def lines(self) -> list[bytes]:
        with self._lock:
            return [line.rstrip(b"\n") for line in self._lines]

    def rest(self) -> bytes:
        """Everything the pipe carried, once the child has exited."""
        self._thread.join(10)
        with self._lock:
            return b"".join(self._lines)
