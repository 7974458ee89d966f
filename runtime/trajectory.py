"""Trajectory: the record of one session, in the OpenAI chat-with-tools shape.

The pydantic models here are the on-disk contract (one JSON line per trajectory); later stages
(filter, export, trainer) read them back with `Trajectory.model_validate_json`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    SystemPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)

from .tools import ToolErrorKind


class TerminationReason(StrEnum):
    """Why a session ended. Only USER_STOP is a conversation that ran to its natural end."""

    USER_STOP = "user_stop"
    MAX_TURNS = "max_turns"
    MAX_STEPS = "max_steps"
    TOO_MANY_ERRORS = "too_many_errors"
    TIMEOUT = "timeout"
    MODEL_ERROR = "model_error"


class FunctionCall(BaseModel):
    name: str
    arguments: str  # JSON text, as the OpenAI API carries it (and as a model may have mangled it)


class ChatToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    """One message of the agent's conversation (system / user / assistant / tool)."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[ChatToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None  # the tool's name on tool messages


class ToolCallRecord(BaseModel):
    """One executed call, from either side (dual control), with its outcome."""

    side: Literal["agent", "user"]
    step: int  # index of the model request that issued it
    tool_call_id: str
    name: str
    arguments: str
    observation: str
    error: ToolErrorKind | None = None
    changed: bool = False
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
    agent_model: str
    user_model: str
    usage: dict[Literal["agent", "user"], Usage] = Field(default_factory=dict)
    timings: Timings

    @property
    def key(self) -> tuple[str, int]:
        return (self.task_id, self.trial)


def to_chat_messages(history: list[ModelMessage]) -> list[dict[str, Any]]:
    """Convert a pydantic-ai message history to OpenAI chat messages (as `ChatMessage` data).

    Plain dicts: the Trajectory that holds them is validated as a whole, in pydantic-core,
    which costs far less than building a model per message on every session.
    """
    out: list[dict[str, Any]] = []
    for message in history:
        if isinstance(message, ModelResponse):
            text = "".join(p.content for p in message.parts if isinstance(p, TextPart)) or None
            calls = [
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
