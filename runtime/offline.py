"""Offline policies: pydantic-ai `Model`s that need no model server.

They exist to exercise the machinery (sessions, filters, training data plumbing) on a laptop,
not to stand in for results, and they are named as such everywhere: `ScriptedUser` and
`GoldAgent` report `system == "offline"`.

Both are deterministic functions of the conversation so far (a retried request gets the same
answer), built per task by a factory (`scripted_user`, `gold_agent`).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import orjson
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    ModelResponsePart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.profiles import ModelProfile
from pydantic_ai.settings import ModelSettings
from pydantic_ai.usage import RequestUsage

from .task import GoldCall, Task
from .tools import ToolKind

STOP_SIGNAL = "###STOP###"


@dataclass(frozen=True)
class ErrorInjection:
    """Per-call probabilities of the gold agent's deliberate mistakes.

    bad_argument: call with an invalid argument first, see the error, then make the right call.
    extra_read: repeat one of the task's read calls before this call (harmless).
    wrong_write: make a write with a wrong argument and never correct it (state will differ).
    """

    bad_argument: float = 0.0
    extra_read: float = 0.0
    wrong_write: float = 0.0

    def any(self) -> bool:
        return bool(self.bad_argument or self.extra_read or self.wrong_write)


Step = tuple[Literal["call"], str, str] | tuple[Literal["text"], str]


def _n_responses(messages: list[ModelMessage]) -> int:
    return sum(1 for m in messages if isinstance(m, ModelResponse))


_PROFILES: dict[type[Model], ModelProfile] = {}


class _OfflineModel(Model):
    """Shared plumbing: a name, `system == "offline"`, an optional simulated latency (what a
    model server would add to each request), and a tiny usage estimate."""

    def __init__(self, name: str, latency_s: float) -> None:
        super().__init__()
        self._name = name
        self.latency_s = latency_s

    @property
    def profile(self) -> ModelProfile:
        """One profile per class: pydantic-ai resolves one per instance (~70 us), and offline
        models are built per session."""
        cls = type(self)
        if cls not in _PROFILES:
            _PROFILES[cls] = Model.profile.func(self)  # type: ignore[attr-defined]
        return _PROFILES[cls]

    @property
    def model_name(self) -> str:
        return self._name

    @property
    def system(self) -> str:
        return "offline"

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        if self.latency_s:
            await anyio.sleep(self.latency_s)
        return self._respond(self._reply(_n_responses(messages), messages))

    def _reply(self, step: int, messages: list[ModelMessage]) -> list[ModelResponsePart]:
        """The parts of reply number `step`, given the conversation so far."""
        raise NotImplementedError

    def _respond(self, parts: list[ModelResponsePart]) -> ModelResponse:
        out = sum(len(p.content) if isinstance(p, TextPart) else 8 for p in parts) // 4
        return ModelResponse(
            parts=parts, usage=RequestUsage(output_tokens=out), model_name=self._name
        )


class GoldAgent(_OfflineModel):
    """Executes a task's gold calls one per step, then reports the gold outputs to the user."""

    def __init__(
        self,
        task: Task,
        tool_kinds: Mapping[str, ToolKind],
        injection: ErrorInjection = ErrorInjection(),
        seed: str = "",
        latency_s: float = 0.0,
    ) -> None:
        super().__init__("gold-agent", latency_s)
        rng = random.Random(f"{task.id}/{seed}") if injection.any() else None
        self.plan = _plan(task, tool_kinds, injection, rng)

    def _reply(self, i: int, messages: list[ModelMessage]) -> list[ModelResponsePart]:
        step = self.plan[i] if i < len(self.plan) else self.plan[-1]
        if step[0] == "call":
            return [ToolCallPart(step[1], step[2], tool_call_id=f"call_{i}")]
        return [TextPart(step[1])]


def _plan(
    task: Task, kinds: Mapping[str, ToolKind], inj: ErrorInjection, rng: random.Random | None
) -> list[Step]:
    calls = [c for c in task.gold_calls if c.requestor == "agent"]
    if rng is None:  # no injection: the gold calls, then the report
        steps: list[Step] = [("call", c.name, _json(c.arguments)) for c in calls]
        return [*steps, ("text", _report(task))]
    reads = [c for c in calls if kinds.get(c.name) == "read"]
    steps = []
    for call in calls:
        if reads and rng.random() < inj.extra_read:
            extra = rng.choice(reads)
            steps.append(("call", extra.name, _json(extra.arguments)))
        if call.arguments and rng.random() < inj.bad_argument:
            steps.append(("call", call.name, _json(_break_type(call.arguments, rng))))
        if kinds.get(call.name) == "write" and call.arguments and rng.random() < inj.wrong_write:
            steps.append(("call", call.name, _json(_perturb(call.arguments, rng))))
            continue  # the mistake is never corrected
        steps.append(("call", call.name, _json(call.arguments)))
    steps.append(("text", _report(task)))
    return steps


def _report(task: Task) -> str:
    report = "I have completed your request."
    if task.gold_outputs:
        report += " Results: " + ", ".join(task.gold_outputs) + "."
    return report


def _json(args: Mapping[str, Any]) -> str:
    return orjson.dumps(args).decode()


def _break_type(args: Mapping[str, Any], rng: random.Random) -> dict[str, Any]:
    """The same arguments with one value of the wrong JSON type (fails validation)."""
    out = dict(args)
    key = rng.choice(sorted(out))
    out[key] = ["not", "a", "scalar"] if isinstance(out[key], str) else "not-a-number"
    return out


def _perturb(args: Mapping[str, Any], rng: random.Random) -> dict[str, Any]:
    """The same arguments with one value changed but still well-typed (a wrong write)."""
    out = dict(args)
    key = rng.choice(sorted(out))
    value = out[key]
    if isinstance(value, bool):
        out[key] = not value
    elif isinstance(value, int | float):
        out[key] = value + 1
    elif isinstance(value, str):
        out[key] = value + "x"
    else:
        out[key] = None
    return out


class ScriptedUser(_OfflineModel):
    """States the task's intent, answers questions by restating it, stops once work is reported.

    User-side gold calls (dual control) are made first, one per step. The stop signal is sent
    only in reply to an agent message that reports rather than asks (no question mark).
    """

    def __init__(self, task: Task, max_answers: int = 3, latency_s: float = 0.0) -> None:
        super().__init__("scripted-user", latency_s)
        self.intent = task.intent
        self.user_calls: list[GoldCall] = [c for c in task.gold_calls if c.requestor == "user"]
        self.max_answers = max_answers

    def _reply(self, i: int, messages: list[ModelMessage]) -> list[ModelResponsePart]:
        if i < len(self.user_calls):
            call = self.user_calls[i]
            return [ToolCallPart(call.name, _json(call.arguments), tool_call_id=f"user_call_{i}")]
        said = i - len(self.user_calls)  # messages already sent to the agent
        if said == 0:
            return [TextPart(self.intent)]
        if "?" in _last_agent_text(messages) and said <= self.max_answers:
            return [TextPart(f"To be clear: {self.intent}")]
        return [TextPart(STOP_SIGNAL)]


def _last_agent_text(messages: list[ModelMessage]) -> str:
    """The agent's latest message, which the user simulator receives as its prompt."""
    for message in reversed(messages):
        if isinstance(message, ModelRequest):
            for part in message.parts:
                if not isinstance(part, ToolReturnPart) and isinstance(
                    getattr(part, "content", None), str
                ):
                    return str(getattr(part, "content", ""))
    return ""
