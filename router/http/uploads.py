"""Requests that come as a multipart upload (`multipart/form-data`), read as they arrive.

Text fields become strings (a name given more than once, a list of them); each file goes to
an `Upload` (`router.upstream.spool`): in memory up to 1 MiB, then in a temporary file, so a
large upload is never held whole in the router's memory, and a retry or a fallback can send
it again. The operation's body limit applies to the whole body as it arrives: past it, 413,
before another byte is kept. The form is closed (its temporary files deleted) when the
request ends, however it ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from router import errors
from router.upstream.multipart import MultipartError, MultipartParser, Part, boundary_of
from router.upstream.spool import Upload

MAX_TEXT_BYTES = 1 << 20  # the text fields of one form, together
MAX_PARTS = 256


@dataclass(slots=True)
class Form:
    """A multipart request's fields: text (`str`, or a list for a repeated name) and files
    (`Upload`), by form name."""

    fields: dict[str, Any] = field(default_factory=dict)
    uploads: list[Upload] = field(default_factory=list)

    def close(self) -> None:
        for upload in self.uploads:
            upload.close()

    def add(self, name: str, value: str | Upload) -> None:
        if name not in self.fields:
            self.fields[name] = value
            return
        held = self.fields[name]
        if isinstance(held, list):
            held.append(value)
        else:
            self.fields[name] = [held, value]


def is_form(headers: Mapping[str, str]) -> bool:
    """Whether a request says it is a multipart form (for an operation taking either kind)."""
    return headers.get("content-type", "").lower().startswith("multipart/")


async def read_form(request: Request, headers: Mapping[str, str], limit: int) -> Form:
    """The request's form, read as it arrives; raises InvalidRequest for a body that is not
    multipart/form-data, PayloadTooLarge past `limit` bytes."""
    content_type = headers.get("content-type", "")
    boundary = boundary_of(content_type)
    if boundary is None:
        raise errors.InvalidRequest(
            "this endpoint takes a multipart/form-data upload with a boundary "
            f"(Content-Type was '{content_type[:100]}')",
            param="body",
        )
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise errors.PayloadTooLarge(f"request body is larger than {limit} bytes")
    form = Form()
    try:
        await _read(request, MultipartParser(boundary), form, limit)
    except MultipartError as exc:
        form.close()
        raise errors.InvalidRequest(str(exc), param="body") from None
    except BaseException:
        form.close()
        raise
    return form


async def _read(request: Request, parser: MultipartParser, form: Form, limit: int) -> None:
    size = text_size = parts = 0
    part: Part | None = None
    upload: Upload | None = None
    text = bytearray()
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.PayloadTooLarge(f"request body is larger than {limit} bytes")
        for event in parser.feed(chunk):
            if type(event) is bytes:
                if upload is not None:
                    upload.write(event)
                else:
                    text_size += len(event)
                    if text_size > MAX_TEXT_BYTES:
                        raise errors.PayloadTooLarge(
                            f"the form's text fields are larger than {MAX_TEXT_BYTES} bytes"
                        )
                    text += event
            elif isinstance(event, Part):
                parts += 1
                if parts > MAX_PARTS:
                    raise errors.InvalidRequest(f"a form may have at most {MAX_PARTS} parts")
                part = event
                if event.filename is not None:
                    upload = Upload(event.name, event.filename, event.content_type)
                    form.uploads.append(upload)
            elif part is not None:  # the part ended
                if upload is not None:
                    form.add(part.name, upload)
                else:
                    form.add(part.name, _decoded(part.name, text))
                part, upload = None, None
                text.clear()
    parser.finish()


def _decoded(name: str, text: bytearray) -> str:
    try:
        return text.decode()
    except UnicodeDecodeError:
        raise errors.InvalidRequest(f"form field '{name}' is not UTF-8 text", param=name) from None
