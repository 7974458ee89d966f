"""Trajectory: the record of one session, in the OpenAI chat-with-tools shape.

The pydantic models here are the on-disk contract (one JSON line per trajectory); later stages
(filter, export, trainer) read them back with `Trajectory.model_validate_json`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field, with_config
from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    SystemPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from typing_extensions import TypedDict

from .tools import ToolErrorKind


class TerminationReason(StrEnum):
    """Why a session ended. Only USER_STOP is a conversation that ran to its natural end."""

    USER_STOP = "user_stop"
    MAX_TURNS = "max_turns"
    MAX_STEPS = "max_steps"
    TOO_MANY_ERRORS = "too_many_errors"
    TIMEOUT = "timeout"
    MODEL_ERROR = "model_error"


# Messages and call records are TypedDicts, not models: a trajectory holds dozens of them, and
# pydantic-core validates and dumps plain dicts ~2.5x faster than a model per item (measured:
# 38 us vs 96 us for a 20-message trajectory). They are the OpenAI chat shape, dicts anyway.


class FunctionCall(TypedDict):
    name: str
    arguments: str  # JSON text, as the OpenAI API carries it (and as a model may have mangled it)


class ChatToolCall(TypedDict):
    id: str
    type: Literal["function"]
    function: FunctionCall


@with_config(ConfigDict(extra="forbid"))
class ChatMessage(TypedDict):
    """One message of the agent's conversation (system / user / assistant / tool)."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str | None
    tool_calls: NotRequired[list[ChatToolCall] | None]
    tool_call_id: NotRequired[str]
    name: NotRequired[str]  # the tool's name on tool messages


class AssertionRecord(TypedDict):
    """A task's check run when the session ended (`Task.assertions`), with its outcome."""

    side: Literal["agent", "user"]
    name: str
    arguments: dict[str, Any]
    expected: Any
    result: Any
    passed: bool


class ToolCallRecord(TypedDict):
    """One executed call, from either side (dual control), with its outcome."""

    side: Literal["agent", "user"]
    step: int  # index of the model request that issued it
    tool_call_id: str
    name: str
    arguments: str
    observation: str
    error: ToolErrorKind | None
    changed: bool
    duration_ms: float


class Usage(BaseModel):
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


class Timings(BaseModel):
    started_at: float  # unix time
    duration_s: float
    agent_model_s: float
    user_model_s: float
    tools_s: float


class Trajectory(BaseModel):
    """The record of one session, streamed to JSONL as soon as it finishes."""

    task_id: str
    trial: int
    domain: str
    split: str | None = None  # the task's split, so an evaluation can prove what it trained on
    messages: list[ChatMessage]
    tool_calls: list[ToolCallRecord]
    termination: TerminationReason
    error: str | None = None  # what went wrong, for MODEL_ERROR / TIMEOUT
    turns: int
    steps: int
    initial_hash: str
    final_hash: str
    user_initial_hash: str | None = None  # the user's own state, in dual-control domains
    user_final_hash: str | None = None
    assertions: list[AssertionRecord] = Field(default_factory=list)
    agent_model: str
    user_model: str
    usage: dict[Literal["agent", "user"], Usage] = Field(default_factory=dict)
    timings: Timings

    @property
    def key(self) -> tuple[str, int]:
        return (self.task_id, self.trial)


def to_chat_messages(history: list[ModelMessage]) -> list[ChatMessage]:
    """Convert a pydantic-ai message history to OpenAI chat messages, in order."""
    out: list[ChatMessage] = []
    for message in history:
        if isinstance(message, ModelResponse):
            text = "".join(p.content for p in message.parts if isinstance(p, TextPart)) or None
            calls: list[ChatToolCall] = [
                {
                    "id": p.tool_call_id,
                    "type": "function",
                    "function": {"name": p.tool_name, "arguments": _args_text(p)},
                }
                for p in message.parts
                if isinstance(p, ToolCallPart)
            ]
            out.append({"role": "assistant", "content": text, "tool_calls": calls or None})
            continue
        for part in message.parts:
            if isinstance(part, SystemPromptPart):
                out.append({"role": "system", "content": part.content})
            elif isinstance(part, UserPromptPart):
                out.append({"role": "user", "content": str(part.content)})
            elif isinstance(part, ToolReturnPart):
                out.append(
                    {
                        "role": "tool",
                        "content": str(part.content),
                        "tool_call_id": part.tool_call_id,
                        "name": part.tool_name,
                    }
                )
    return out


def _args_text(part: ToolCallPart) -> str:
    """Arguments exactly as the model sent them when they are text (possibly malformed JSON)."""
    return part.args if isinstance(part.args, str) else part.args_as_json_str()
