"""The demo LLM's fallback rule: what an open breaker on `assistant` answers with (OpenAI shape, made by the
gateway from the text returned here).

A canned, honest reply: it says the assistant is degraded and points to a human channel, instead of
passing on a refusal or an invalid answer. Pure and fast, as rules must be (it runs in the event loop).
"""

from __future__ import annotations

from typing import Any

DEGRADED_REPLY = (
    "The assistant is running in a degraded mode right now, so this is a standard reply: "
    "your request was received and logged. For anything urgent, contact the on-call team."
)


def degraded_answer(messages: Any) -> str:
    """`rule(messages) -> str`: the chat messages (or a completion's prompt) in, the reply text out."""
    del messages  # the same answer whatever was asked: predictable is the point of a fallback
    return DEGRADED_REPLY
