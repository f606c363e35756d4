"""Checking a regenerated answer against what the client already received, before any of it
goes out (`stream_recovery: regenerate`, `router.routing.recovery`).

The regenerated answer's text is held back while it reproduces, character by character, the
text the client has; only what follows is forwarded. Text that departs from it, a tool call,
a second choice, or an answer that ends before reproducing it all, is a `Departed` failure:
mismatched text is never spliced into the client's answer.
"""

from __future__ import annotations

from typing import Any

from router import errors

# The regenerated answer is not the one the client was receiving (the upstream answered,
# so not a breaker failure).
Departed = errors.RegenerationDiffers


class Verifier:
    """Holds back a regenerated answer until it has reproduced `sent` exactly."""

    __slots__ = ("at", "provider", "sent")

    def __init__(self, sent: str, provider: str) -> None:
        self.sent = sent
        self.at = 0  # characters of `sent` reproduced so far
        self.provider = provider

    @property
    def verified(self) -> bool:
        return self.at >= len(self.sent)

    def admit(self, chunk: dict[str, Any]) -> bool:
        """Cut from `chunk` what the client already has; False when nothing is left to send.
        Raises `Departed` when the regenerated text departs from what was sent."""
        if self.verified:
            return True
        choices: list[Any] = chunk.get("choices") or []
        if len(choices) != 1 or choices[0].get("index"):
            raise self._departed("answered with another choice")
        choice = choices[0]
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            raise self._departed("answered in another shape")
        if delta.get("tool_calls") or delta.get("function_call"):
            raise self._departed("called a tool")
        text = delta.get("content")
        delta.pop("role", None)  # the client has the message's role
        delta.pop("reasoning_content", None)  # ... and its reasoning so far
        if isinstance(text, str) and text:
            expected = self.sent[self.at : self.at + len(text)]
            common = len(expected)
            if text[:common] != expected:
                raise self._departed("wrote other text")
            self.at += common
            delta["content"] = text[common:]
        if choice.get("finish_reason") and not self.verified:
            raise self._departed("ended before reproducing it")
        return bool(delta.get("content")) or (self.verified and bool(choice.get("finish_reason")))

    def _departed(self, how: str) -> Departed:
        return Departed(
            f"upstream '{self.provider}' regenerated the answer but {how}; "
            "the text already sent was kept as it is",
            provider=self.provider,
        )
