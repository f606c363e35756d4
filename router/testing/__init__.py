"""Test kit for the router and its plugins: a scriptable fake upstream and a real router.

Installed with the core as a pytest plugin (`router.testing.pytest_plugin`), so any project,
including a third-party provider plugin, gets the `fake_upstream` and `router_server`
fixtures without configuration.
"""

from router.testing.closing import closed_after_test
from router.testing.fake_upstream import (
    FakeUpstream,
    Received,
    Reply,
    chat_chunk,
    chat_chunks,
    chat_completion,
    json_reply,
    sse_reply,
    text_reply,
    usage_block,
)
from router.testing.faults import (
    PREFILL_REFUSAL,
    has_prefill,
    refusing_prefill,
    word_stream,
    words,
)
from router.testing.server import RouterProcess, RouterServer, free_port, wait_ready
from router.testing.waiting import wait_until

__all__ = [
    "PREFILL_REFUSAL",
    "FakeUpstream",
    "Received",
    "Reply",
    "RouterProcess",
    "RouterServer",
    "chat_chunk",
    "chat_chunks",
    "chat_completion",
    "closed_after_test",
    "free_port",
    "has_prefill",
    "json_reply",
    "refusing_prefill",
    "sse_reply",
    "text_reply",
    "usage_block",
    "wait_ready",
    "wait_until",
    "word_stream",
    "words",
]
