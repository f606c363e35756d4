"""Pure translators between the APIs the router serves and chat completions, the one API
its targets speak: no I/O, no routing. The endpoints translate a request to chat, route it
as any chat request, and translate the answer (or each stream chunk) back.

    responses_request   Responses request  → chat request (and what cannot be translated)
    responses_answer    chat completion    → Responses `response` object
    responses_stream    chat chunks        → Responses SSE events
    messages_request    Messages request   → chat request
    messages_answer     chat completion    → Messages `message`
    messages_stream     chat chunks        → Messages SSE events
    messages_errors     router errors      → Anthropic error bodies and the stream's error event
    tokens              chat usage         → each API's usage; prompt estimates; count_tokens
                                           and input_tokens
    common              what they share: `TargetFeatures`, ids, SSE frames, field readers
"""

from router.translate.common import PLAIN, TargetFeatures
from router.translate.messages_answer import chat_to_message
from router.translate.messages_errors import anthropic_error, anthropic_error_frame
from router.translate.messages_request import messages_to_chat
from router.translate.messages_stream import MessagesStream
from router.translate.responses_answer import chat_to_response, echo_fields
from router.translate.responses_request import check_responses_supported, responses_to_chat
from router.translate.responses_stream import ResponsesStream
from router.translate.tokens import (
    count_tokens,
    input_tokens,
    messages_prompt_tokens,
    responses_prompt_tokens,
)

__all__ = [
    "PLAIN",
    "MessagesStream",
    "ResponsesStream",
    "TargetFeatures",
    "anthropic_error",
    "anthropic_error_frame",
    "chat_to_message",
    "chat_to_response",
    "check_responses_supported",
    "count_tokens",
    "echo_fields",
    "input_tokens",
    "messages_prompt_tokens",
    "messages_to_chat",
    "responses_prompt_tokens",
    "responses_to_chat",
]
