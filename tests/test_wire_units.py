"""Pure pieces of the wire handling: rate-limit headers, error sorting, the SSE decoder."""

import email.utils
import time

import pytest

from router import errors
from router.upstream.classify import classify_error, extract_error
from router.upstream.ratelimit_headers import parse_rate_limit_headers, parse_seconds
from router.upstream.sse import SSEDecoder


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("12", 12.0),
        ("1.5", 1.5),
        ("6m0s", 360.0),
        ("120ms", 0.12),
        ("1h2m", 3720.0),
        ("", None),
        ("soon", None),
    ],
)
def test_parse_seconds(value, seconds):
    assert parse_seconds(value) == seconds


def test_parse_seconds_reads_http_dates_and_epochs():
    now = time.time()
    assert 9 <= parse_seconds(email.utils.formatdate(now + 10, usegmt=True), now=now) <= 10
    assert parse_seconds(str(int(now) + 30), now=now) == pytest.approx(30, abs=1)


def test_openai_style_headers():
    info = parse_rate_limit_headers(
        {
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "1s",
            "x-ratelimit-limit-tokens": "1000",
            "x-ratelimit-remaining-tokens": "10",
            "x-ratelimit-reset-tokens": "6m0s",
        }
    )
    assert (info.limit_requests, info.remaining_requests, info.reset_requests) == (500, 0, 1.0)
    assert info.exhausted and info.wait_hint() == 1.0


def test_kong_picks_the_binding_window():
    info = parse_rate_limit_headers(
        {
            "x-ratelimit-limit-minute": "7",
            "x-ratelimit-remaining-minute": "3",
            "x-ratelimit-limit-hour": "100",
            "x-ratelimit-remaining-hour": "0",
        }
    )
    assert (info.limit_requests, info.remaining_requests, info.reset_requests) == (100, 0, 3600)


def test_litellm_retry_after_echo_and_no_headers():
    assert parse_rate_limit_headers({"llm_provider-retry-after": "7"}).retry_after == 7
    assert parse_rate_limit_headers({"content-type": "application/json"}) is None


@pytest.mark.parametrize(
    ("status", "message", "cls"),
    [
        (429, "slow down", errors.UpstreamRateLimited),
        (429, "You exceeded your current quota", errors.InsufficientQuota),
        (402, "balance", errors.InsufficientQuota),
        (400, "This model's maximum context length is 8192 tokens", errors.ContextLengthExceeded),
        (400, "flagged by the content_filter", errors.ContentPolicyViolation),
        (400, "bad temperature", errors.UpstreamBadRequest),
        (401, "nope", errors.UpstreamAuthError),
        (404, "no such model", errors.UpstreamNotFound),
        (408, "slow", errors.UpstreamTimeout),
        (500, "context length", errors.UpstreamServerError),
        (503, "overloaded", errors.UpstreamUnavailable),
    ],
)
def test_classify_error(status, message, cls):
    error = classify_error(status, message, provider="p")
    assert type(error) is cls
    assert error.upstream_status == status and "upstream 'p'" in error.message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b'{"error":{"message":"m","type":"t","param":"None","code":"429"}}',
            ("m", "429", "t", None),
        ),
        (b'{"error":"flat"}\n', ("flat", None, None, None)),
        (b'{\n  "message":"kong"\n}', ("kong", None, None, None)),
        (
            b'{"detail":[{"loc":["body","messages"],"msg":"Field required","type":"missing"}]}',
            ("messages: Field required", None, None, "messages"),
        ),
        (
            b'{"errors":[{"code":"10011","title":"Too many requests","detail":"slow"}]}',
            ("Too many requests: slow", "10011", None, None),
        ),
        (
            b"Rate limit exceeded. Please try again later.\n",
            ("Rate limit exceeded. Please try again later.", None, None, None),
        ),
    ],
)
def test_extract_error(body, expected):
    assert extract_error(body) == expected


def test_sse_decoder_handles_split_frames_crlf_comments_and_multiline_data():
    decoder = SSEDecoder()
    stream = b': keep-alive\r\n\r\ndata: {"a":1}\r\n\r\nevent: error\ndata: x\ndata: y\n\ndata: [DO'
    events = []
    for i in range(len(stream)):  # one byte at a time: nothing depends on read boundaries
        events += list(decoder.feed(stream[i : i + 1]))
    events += list(decoder.feed(b"NE]\n\n"))
    assert [(e.data, e.event) for e in events] == [
        (b'{"a":1}', None),
        (b"x\ny", "error"),
        (b"[DONE]", None),
    ]


@pytest.mark.parametrize("step", [1, 2, 64], ids=["bytewise", "in pairs", "whole"])
def test_sse_decoder_ignores_a_byte_order_mark_that_begins_the_stream(step: int) -> None:
    """The SSE standard ignores one leading BOM; read as a field name, it would hide the
    first event. One anywhere else is data, and stays."""
    stream = b'\xef\xbb\xbfdata: {"a":1}\n\ndata: \xef\xbb\xbfx\n\n'
    decoder = SSEDecoder()
    events = []
    for i in range(0, len(stream), step):
        events += list(decoder.feed(stream[i : i + step]))
    assert [e.data for e in events] == [b'{"a":1}', b"\xef\xbb\xbfx"]
    short = SSEDecoder()  # a stream of fewer bytes than a BOM is kept, not lost
    assert list(short.feed(b"\xef")) == [] and list(short.feed(b"x")) == []
    assert [e.data for e in [*short.feed(b"\n\ndata: y\n\n")]] == [b"y"]


def test_sse_decoder_flushes_an_unterminated_last_event():
    decoder = SSEDecoder()
    assert list(decoder.feed(b'data: {"b":2}')) == []
    assert [e.data for e in decoder.flush()] == [b'{"b":2}']


STREAM = (
    b': ping\r\n\r\ndata: {"a":1}\r\n\r\nevent: error\r\ndata: x\rdata: y\r\rdata: '
    + b"z" * 5000
    + b"\n\n\ndata: [DONE]\n\n"
)
EXPECTED = [(b'{"a":1}', None), (b"x\ny", "error"), (b"z" * 5000, None), (b"[DONE]", None)]


@pytest.mark.parametrize("step", [1, 2, 3, 7, 100, 4096, len(STREAM)])
def test_sse_decoder_reads_the_same_events_whatever_the_reads(step: int) -> None:
    """Line ends of every kind split anywhere, and an event held over many reads (which the
    decoder keeps as pieces until one can end it), give the same events."""
    decoder = SSEDecoder()
    events = []
    for i in range(0, len(STREAM), step):
        events += list(decoder.feed(STREAM[i : i + step]))
    events += list(decoder.flush())
    assert [(e.data, e.event) for e in events] == EXPECTED


def test_sse_decoder_refuses_an_event_past_its_size_without_holding_more() -> None:
    decoder = SSEDecoder(most=100_000, provider="odd")
    assert list(decoder.feed(b"data: ok\n\ndata: ")) != []
    with pytest.raises(errors.MalformedResponse, match="upstream 'odd' sent an event larger than"):
        for _ in range(100):
            list(decoder.feed(b"y" * 4096 + b"\n"))  # lines, but never a blank one
    decoder = SSEDecoder(most=100_000)
    list(decoder.feed(b"data: " + b"y" * 90_000))
    assert [e.data for e in decoder.feed(b"y\n\n")] == [b"y" * 90_001]  # (within it: read)


def test_sse_decoder_ends_a_stream_cut_after_a_carriage_return() -> None:
    decoder = SSEDecoder()
    assert list(decoder.feed(b"data: last\r")) == []
    assert [e.data for e in decoder.flush()] == [b"last"]
