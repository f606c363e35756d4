"""An uploaded file, held so that it can be sent upstream more than once (a retry, a fallback)
without ever being held whole in memory.

Its first `MEMORY_LIMIT` bytes (1 MiB) stay in memory; a larger file goes to an anonymous
temporary file in the system's temporary directory (`TMPDIR`), which has no name on disk and
which the operating system deletes when it is closed, or when the process dies. The request
that read it closes it when it ends, however it ends. Reads are positional: two attempts may
read the same upload at once.

Writes and reads are plain system calls on the event loop: a 64 KiB write or read of a file
in the page cache takes microseconds, less than a hop to a worker thread would.
"""

from __future__ import annotations

import os
import tempfile
from typing import IO

MEMORY_LIMIT = 1 << 20  # bytes of an upload kept in memory before it goes to a temporary file
HEAD = 4096  # bytes of the start kept in memory, for what reads a file's header (its duration)


class Upload:
    """One file of a multipart form: its form name, file name, content type and bytes."""

    __slots__ = ("_file", "_memory", "content_type", "filename", "head", "name", "size")

    def __init__(self, name: str, filename: str, content_type: str | None) -> None:
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.size = 0
        self.head = b""
        self._memory = bytearray()
        self._file: IO[bytes] | None = None

    def __repr__(self) -> str:
        return f"<Upload {self.name} {self.filename!r} {self.size} bytes>"

    @property
    def on_disk(self) -> bool:
        return self._file is not None

    def write(self, data: bytes) -> None:
        """Append `data` (while the form is being read)."""
        if len(self.head) < HEAD:
            self.head += data[: HEAD - len(self.head)]
        self.size += len(data)
        if self._file is None:
            if len(self._memory) + len(data) <= MEMORY_LIMIT:
                self._memory += data
                return
            # Unbuffered, so that what was written is what a positional read sees; closed by
            # `close`, not a `with` block: it outlives this call.
            self._file = tempfile.TemporaryFile(buffering=0, prefix="llm-switchyard-")  # noqa: SIM115
            self._file.write(self._memory)
            self._memory = bytearray()
        self._file.write(data)

    def read_at(self, offset: int, size: int) -> bytes:
        """Up to `size` bytes from `offset`."""
        if self._file is None:
            return bytes(self._memory[offset : offset + size])
        return os.pread(self._file.fileno(), size, offset)

    def close(self) -> None:
        """Let go of the bytes; a temporary file is deleted. Safe to call more than once."""
        self._memory = bytearray()
        file, self._file = self._file, None
        if file is not None:
            file.close()
