"""What the `mock` provider answers beyond chat: images, speech, transcriptions, moderations
and rerank. Small, valid and deterministic, made offline, in the shapes OpenAI (and, for
rerank, Cohere and Jina) answer with, so the offline quickstart serves every operation.

    images          a 1x1 PNG per image, as `b64_json` or a `data:` URL (`url`, the default)
    speech          a short tone as WAV or raw PCM (24 kHz, 16-bit mono), or silent MP3 frames
    transcriptions  a transcript naming the upload's size, as json, text, srt, vtt or
                    verbose_json, its duration from a WAV header (else 128 kbit/s); a
                    translation's the same, in English
    image edits     as images: a 1x1 PNG per image asked for; streamed (`stream`), each
                    image's `partial_images` and the image as OpenAI's events; image
                    variations the same, not streamed
    moderations     a category is flagged when the text has one of its trigger words
    rerank          documents scored by the share of the query's words they contain
    structured      chat's `response_format`: a JSON value its schema accepts, made of the
                    answer's text (`structured`)
    tool calls      a call of the function `tool_choice` makes the model call (`required`,
                    or one named), with arguments its `parameters` schema accepts
                    (`tool_call`); left free to choose (`auto`), the mock answers in text
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
import time
import zlib
from typing import Any

import orjson

from router.limits.units import AUDIO_BYTES_PER_SECOND, images_asked, wav_seconds

SAMPLE_RATE = 24_000  # OpenAI's speech sample rate (its `pcm` format)
_MP3_FRAME = b"\xff\xfb\x10\xc0" + bytes(100)  # MPEG-1 layer III, 32 kbit/s, 44.1 kHz, silent
_MP3_FRAME_SECONDS = 1152 / 44_100


def _png() -> bytes:
    """A valid 1x1 RGBA PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x4f\x8e\xf7\xff")  # filter byte, then one pixel
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


PNG = _png()
_PNG_B64 = base64.b64encode(PNG).decode()


def images(body: dict[str, Any]) -> dict[str, Any]:
    """`n` images (generated, or an edit's or a variation's: its form's fields); a
    variation, which has no prompt, has no `revised_prompt` either."""
    n = images_asked(body)
    item: dict[str, Any]
    if body.get("response_format") == "b64_json":
        item = {"b64_json": _PNG_B64}
    else:
        item = {"url": "data:image/png;base64," + _PNG_B64}
    if "prompt" in body:
        item["revised_prompt"] = str(body["prompt"])
    return {"created": int(time.time()), "data": [item] * n}


def image_events(body: dict[str, Any], task: str) -> bytes:
    """A streamed images answer (`stream`), `task` "image_generation" or "image_edit": for
    each image, its `partial_images` (0 to 3) then the image, as OpenAI's events."""
    partial = body.get("partial_images")
    if type(partial) is str and partial.isascii() and partial.isdigit():
        partial = int(partial)
    partials = min(3, partial) if type(partial) is int and partial > 0 else 0
    shape = {
        "background": "opaque",
        "created_at": int(time.time()),
        "output_format": "png",
        "quality": "low",
        "size": "1024x1024",
    }
    prompt = len(str(body.get("prompt", "")).split())
    usage = {
        "input_tokens": prompt,
        "input_tokens_details": {"image_tokens": 0, "text_tokens": prompt},
        "output_tokens": 272,
        "total_tokens": prompt + 272,
    }
    frames = []
    for _ in range(images_asked(body)):
        events = [
            {
                "type": f"{task}.partial_image",
                "b64_json": _PNG_B64,
                **shape,
                "partial_image_index": i,
            }
            for i in range(partials)
        ]
        events.append({"type": f"{task}.completed", "b64_json": _PNG_B64, **shape, "usage": usage})
        for event in events:
            frames.append(
                b"event: " + str(event["type"]).encode() + b"\ndata: " + _json(event) + b"\n\n"
            )
    return b"".join(frames)


SPEECH_FORMATS = {"mp3": "audio/mpeg", "wav": "audio/wav", "pcm": "audio/pcm"}


def speech(body: dict[str, Any]) -> bytes:
    """The audio for `body` in its `response_format` (mp3 by default; one of
    `SPEECH_FORMATS`): about 60 ms a word, from 0.2 s to 5 s."""
    text = str(body.get("input", ""))
    seconds = min(5.0, max(0.2, 0.06 * len(text.split())))
    kind = body.get("response_format") or "mp3"
    if kind == "mp3":
        return _MP3_FRAME * math.ceil(seconds / _MP3_FRAME_SECONDS)
    # A tone of 240 to 600 Hz, the text's own: one period, repeated.
    period = 40 + hashlib.sha256(text.encode()).digest()[0] % 61
    wave = [int(8000 * math.sin(2 * math.pi * i / period)) for i in range(period)]
    samples = struct.pack(f"<{period}h", *wave) * (int(seconds * SAMPLE_RATE) // period)
    if kind == "pcm":
        return samples
    return _wav_header(len(samples)) + samples


def _wav_header(data_bytes: int) -> bytes:
    byte_rate = SAMPLE_RATE * 2
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, SAMPLE_RATE, byte_rate, 2, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


TRANSCRIPT_FORMATS = {
    "json": "application/json",
    "verbose_json": "application/json",
    "text": "text/plain; charset=utf-8",
    "srt": "text/plain; charset=utf-8",
    "vtt": "text/plain; charset=utf-8",
}


def transcript(size: int, head: bytes, fields: dict[str, str], task: str = "transcribe") -> bytes:
    """The transcript of an upload of `size` bytes starting with `head`, in the form's
    `response_format` (json by default; one of `TRANSCRIPT_FORMATS`); `task` "translate"
    for a translation (always in English)."""
    what = "translation" if task == "translate" else "transcript"
    text = f"mock {what} of {size} bytes of audio"
    seconds = wav_seconds(head, size)
    duration = round(size / AUDIO_BYTES_PER_SECOND if seconds is None else seconds, 3)
    usage = {"type": "duration", "seconds": max(1, math.ceil(duration))}
    kind = fields.get("response_format") or "json"
    if kind == "text":
        return text.encode() + b"\n"
    if kind in ("srt", "vtt"):
        comma = "," if kind == "srt" else "."
        span = f"{_clock(0, comma)} --> {_clock(duration, comma)}"
        cue = f"1\n{span}\n{text}\n\n" if kind == "srt" else f"WEBVTT\n\n{span}\n{text}\n\n"
        return cue.encode()
    if kind == "verbose_json":
        segment = {
            "id": 0,
            "seek": 0,
            "start": 0.0,
            "end": duration,
            "text": text,
            "tokens": list(range(50364, 50364 + len(text.split()))),
            "temperature": 0.0,
            "avg_logprob": -0.1,
            "compression_ratio": 1.0,
            "no_speech_prob": 0.0,
        }
        verbose = {
            "task": task,
            "language": "english" if task == "translate" else fields.get("language") or "english",
            "duration": duration,
            "text": text,
            "segments": [segment],
            "usage": usage,
        }
        return _json(verbose)
    return _json({"text": text, "usage": usage})


def _clock(seconds: float, comma: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{comma}{millis:03d}"


def _json(payload: Any) -> bytes:
    return orjson.dumps(payload)


CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
TRIGGERS = {
    "harassment": ("idiot", "stupid"),
    "hate": ("hate",),
    "illicit": ("steal", "shoplift"),
    "self-harm": ("suicide",),
    "sexual": ("nsfw",),
    "violence": ("kill", "attack", "hurt"),
}


def moderations(body: dict[str, Any]) -> dict[str, Any]:
    value = body.get("input")
    items = value if isinstance(value, list) else [value]
    results = [_moderation(_text_of(item)) for item in items]
    digest = hashlib.sha256(repr(value).encode()).hexdigest()[:24]
    return {"id": f"modr-mock{digest}", "model": body.get("model", "mock"), "results": results}


def _text_of(item: Any) -> str:
    if isinstance(item, dict):
        return str(item.get("text") or "")
    return "" if item is None else str(item)


def _moderation(text: str) -> dict[str, Any]:
    words = set(text.lower().replace(".", " ").replace(",", " ").split())
    flagged = {c for c, triggers in TRIGGERS.items() if words & set(triggers)}
    seed = hashlib.sha256(text.encode()).digest()
    scores = {
        c: 0.95 if c in flagged else round(seed[i] / 255 / 100, 6) for i, c in enumerate(CATEGORIES)
    }
    return {
        "flagged": bool(flagged),
        "categories": {c: c in flagged for c in CATEGORIES},
        "category_scores": scores,
        "category_applied_input_types": {c: ["text"] for c in CATEGORIES},
    }


def rerank(body: dict[str, Any]) -> dict[str, Any]:
    query = set(str(body.get("query", "")).lower().split())
    documents = body.get("documents") or []
    scored = []
    for index, document in enumerate(documents):
        text = _text_of(document)
        words = set(text.lower().split())
        overlap = len(query & words) / len(query) if query else 0.0
        tie = hashlib.sha256(text.encode()).digest()[0] / 255 / 1000  # deterministic tie-break
        scored.append((round(min(1.0, overlap + tie), 6), index, text))
    scored.sort(key=lambda s: (-s[0], s[1]))
    top_n = body.get("top_n")
    if isinstance(top_n, int):
        scored = scored[:top_n]
    results: list[dict[str, Any]] = []
    for score, index, text in scored:
        result: dict[str, Any] = {"index": index, "relevance_score": score}
        if body.get("return_documents"):
            result["document"] = {"text": text}
        results.append(result)
    tokens = sum(len(_text_of(d).split()) for d in documents) + len(query)
    return {
        "id": "rerank-mock" + hashlib.sha256(repr(body).encode()).hexdigest()[:16],
        "model": body.get("model", "mock"),
        "results": results,
        "usage": {"total_tokens": tokens},
    }


# -- structured outputs (`response_format` on chat) ----------------------------------------

_FORMATTED = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "00:00:00",
    "email": "mock@example.com",
    "uri": "https://example.com/mock",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
_MAX_DEPTH = 16  # a recursive schema's arrays are empty from here on


def structured(response_format: Any, text: str) -> str | None:
    """The answer a model gives in `response_format`: for `json_schema` a JSON value its
    schema accepts (strings are `text`, numbers their least allowed value, every property
    present, one item per array), for `json_object` `{"text": text}`; None for plain text."""
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return _json({"text": text}).decode()
    if kind != "json_schema":
        return None
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    root = schema if isinstance(schema, dict) else {}
    return _json(_instance(root, root, text, 0)).decode()


def _forced_function(body: dict[str, Any]) -> dict[str, Any] | None:
    """The function tool a request makes the model call: the first offered for `required`
    (or `allowed_tools` in `required` mode, the first allowed), the one named for a named
    choice; None when the model is left free (`auto`, `none`, no choice) or none matches."""
    offered = body.get("tools")
    functions = [
        tool["function"]
        for tool in (offered if isinstance(offered, list) else ())
        if isinstance(tool, dict)
        and tool.get("type") == "function"
        and isinstance(tool.get("function"), dict)
    ]
    choice = body.get("tool_choice")
    if not functions or not (choice == "required" or isinstance(choice, dict)):
        return None
    if choice == "required":
        return functions[0]
    names: list[Any]
    if choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools")
        if not isinstance(allowed, dict) or allowed.get("mode") != "required":
            return None
        listed = allowed.get("tools")
        names = [
            t["function"].get("name")
            for t in (listed if isinstance(listed, list) else ())
            if isinstance(t, dict) and isinstance(t.get("function"), dict)
        ]
    else:
        named = choice.get("function")
        names = [named.get("name")] if isinstance(named, dict) else []
    return next((f for name in names for f in functions if f.get("name") == name), None)


def tool_call(body: dict[str, Any], text: str) -> dict[str, Any] | None:
    """The call a chat request's `tool_choice` forces (see `_forced_function`), as an
    answer's `tool_calls` item: arguments that its `parameters` schema accepts, made as
    `structured` makes a value; None when the request forces no call."""
    function = _forced_function(body)
    if function is None:
        return None
    schema = function.get("parameters")
    root = schema if isinstance(schema, dict) and schema else {"type": "object"}
    name = str(function.get("name", ""))
    arguments = _json(_instance(root, root, text, 0)).decode()
    digest = hashlib.sha256(f"{name}\n{arguments}".encode()).hexdigest()[:24]
    return {
        "id": f"call_{digest}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def _instance(schema: Any, root: dict[str, Any], text: str, depth: int) -> Any:
    if not isinstance(schema, dict):
        return text
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        found: Any = root
        for step in ref[2:].split("/"):
            found = found.get(step) if isinstance(found, dict) else None
        return _instance(found, root, text, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for union in ("anyOf", "oneOf", "allOf"):
        options = schema.get(union)
        if isinstance(options, list) and options:
            chosen = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return _instance((chosen or options)[0], root, text, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties")
        if depth >= 2 * _MAX_DEPTH or not isinstance(properties, dict):
            return {}  # (arrays end a recursive schema first, empty: see below)
        return {name: _instance(sub, root, text, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        least = schema.get("minItems")
        count = least if type(least) is int and least > 1 else 1
        if depth >= _MAX_DEPTH:
            return []
        return [_instance(schema.get("items"), root, text, depth + 1)] * count
    if kind in ("integer", "number"):
        least = schema.get("minimum", schema.get("exclusiveMinimum"))
        value = least if isinstance(least, int | float) and not isinstance(least, bool) else 0
        if "exclusiveMinimum" in schema and "minimum" not in schema:
            value += 1
        return math.ceil(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    fmt = schema.get("format")
    string = _FORMATTED.get(fmt, text) if isinstance(fmt, str) else text
    most, least = schema.get("maxLength"), schema.get("minLength")
    if type(most) is int and most >= 0:
        string = string[:most]
    return string.ljust(least, "x") if type(least) is int else string
