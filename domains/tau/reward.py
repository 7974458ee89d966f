"""τ-bench's verification next to ours: the data hash comparison is `TauView.data_hash` against
the gold replay's; this is its outputs check."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from agentscaler.runtime import ChatMessage


def outputs_communicated(outputs: Sequence[str], messages: Iterable[ChatMessage]) -> bool:
    """τ-bench's outputs check: every expected output appears, case-insensitively and with
    commas stripped from the message, in some text the agent sent the user."""
    said = [
        (m.get("content") or "").lower().replace(",", "")
        for m in messages
        if m["role"] == "assistant"
    ]
    return all(any(output.lower() in text for text in said) for output in outputs)
