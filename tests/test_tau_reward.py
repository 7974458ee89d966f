"""τ-bench's outputs check on our trajectories' messages."""

from __future__ import annotations

from agentscaler.domains.tau.reward import outputs_communicated
from agentscaler.runtime import ChatMessage


def test_outputs_must_each_appear_in_what_the_agent_said() -> None:
    messages: list[ChatMessage] = [
        {"role": "user", "content": "How much is the total, and which products?"},
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "tool", "content": "1,093.34", "tool_call_id": "c1"},
        {"role": "assistant", "content": "The total is $1,093.34 for the Wall Clock."},
    ]
    assert outputs_communicated(["1093.34", "wall clock"], messages)
    assert outputs_communicated([], messages)
    assert not outputs_communicated(["1093.34", "kettle"], messages)
    # What only a tool or the user said does not count.
    assert not outputs_communicated(["which products"], messages)
