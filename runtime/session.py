"""One simulated conversation: a user model and an agent model over forked environments.

The loop is ours, over `Model.request`: pydantic-ai's `Agent.run` costs milliseconds of CPU per
step, ours tens of microseconds, which is what lets thousands of sessions share one core
(bench/runtime_throughput.py). Everything a model does wrong ends up in the trajectory: a tool
error observation, or a termination reason; `run()` returns a Trajectory rather than raising.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio
import structlog
from pydantic import BaseModel, ConfigDict, Field
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    SystemPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.settings import ModelSettings

from .environment import Environment
from .errors import UserError
from .events import Event, ModelCalled, ToolCalled
from .fork import Fork
from .offline import STOP_SIGNAL
from .retry import RetryPolicy, request_with_retry
from .task import EnvAssertion, EnvCall, Task
from .tools import ToolErrorKind
from .trajectory import (
    AssertionRecord,
    TerminationReason,
    ToolCallRecord,
    Trajectory,
    to_chat_messages,
)

log = structlog.get_logger(__name__)

Side = Literal["agent", "user"]

USER_SYSTEM_PROMPT = """You are a customer talking to a support agent. Follow your instruction.
Share information only when the agent needs it. Do not invent facts you were not given.
When your goal is reached (or cannot be), reply with {stop} alone.

Instruction: {intent}"""

USER_GREETING = "Hi! How can I help you today?"


class SessionLimits(BaseModel):
    """Bounds on one session; hitting one ends it with the matching termination reason."""

    model_config = ConfigDict(frozen=True)

    max_turns: int = Field(default=20, ge=1)  # user -> agent exchanges
    max_steps: int = Field(default=60, ge=1)  # model requests, per side
    max_consecutive_errors: int = Field(default=5, ge=1)  # tool errors in a row, per side
    timeout_s: float | None = Field(default=600.0, gt=0)


_DEFAULT_LIMITS = SessionLimits()
_DEFAULT_RETRY = RetryPolicy()


class _End(Exception):
    def __init__(self, reason: TerminationReason, error: str | None = None) -> None:
        self.reason = reason
        self.error = error


@dataclass(slots=True)
class _Side:
    """One party of the conversation: its model, history, tools and counters."""

    name: Side
    model: Model
    fork: Fork | None
    history: list[ModelMessage]
    params: ModelRequestParameters
    settings: ModelSettings | None
    # Only models whose host may read special tokens in content need `prepare_messages` (it
    # escapes them); for the rest it returns the history unchanged at ~0.5 ms a call.
    escape_special_tokens: bool = False
    steps: int = 0
    errors_in_a_row: int = 0
    model_s: float = 0.0
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def usage(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }


class Session:
    """Runs one task once. Forks its environments itself and closes them when done."""

    def __init__(
        self,
        task: Task,
        env: Environment,
        agent: Model,
        user: Model,
        *,
        trial: int = 0,
        user_env: Environment | None = None,
        limits: SessionLimits | None = None,
        retry: RetryPolicy | None = None,
        emit: Callable[[Event], None] | None = None,
        agent_settings: ModelSettings | None = None,
        user_settings: ModelSettings | None = None,
        fork_dir: Path | None = None,
    ) -> None:
        self.task = task
        self.trial = trial
        self.env = env
        self.user_env = user_env
        self.agent_model = agent
        self.user_model = user
        self.limits = limits or _DEFAULT_LIMITS
        self.retry = retry or _DEFAULT_RETRY
        self._emit = emit
        self._agent_settings = agent_settings
        self._user_settings = user_settings
        self._fork_file = fork_dir / f"{task.id}.{trial}.sqlite" if fork_dir else None
        self._tools_s = 0.0
        self._turns = 0
        self._tool_log: list[ToolCallRecord] = []
        self._sync = user_env.domain.sync_from_agent if user_env is not None else None
        self._agent_fork: Fork | None = None
        self._user_fork: Fork | None = None

    async def run(self) -> Trajectory:
        started, t0 = time.time(), time.perf_counter()
        async with await self._fork_agent_env() as agent_fork:
            user_fork = self.user_env.fork() if self.user_env is not None else None
            self._agent_fork, self._user_fork = agent_fork, user_fork
            try:
                agent = _Side(
                    "agent",
                    self.agent_model,
                    agent_fork,
                    [ModelRequest(parts=[SystemPromptPart(self.env.domain.policy)])],
                    ModelRequestParameters(function_tools=self.env.tool_definitions),
                    self._agent_settings,
                    _escapes(self.agent_model),
                )
                user = _Side(
                    "user",
                    self.user_model,
                    user_fork,
                    [
                        ModelRequest(
                            parts=[
                                SystemPromptPart(
                                    USER_SYSTEM_PROMPT.format(
                                        stop=STOP_SIGNAL, intent=self.task.intent
                                    )
                                ),
                                UserPromptPart(USER_GREETING),
                            ]
                        )
                    ],
                    ModelRequestParameters(
                        function_tools=self.user_env.tool_definitions if self.user_env else []
                    ),
                    self._user_settings,
                    _escapes(self.user_model),
                )
                for setup in self.task.initialization:
                    await self._run_function(setup)
                if self._sync and user_fork:  # as τ²-bench: the phone starts in line too
                    await self._sync(agent_fork, user_fork)
                initial = await agent_fork.state_hash()
                user_initial = await user_fork.state_hash() if user_fork else None
                reason, error = TerminationReason.USER_STOP, None
                with anyio.move_on_after(self.limits.timeout_s) as scope:
                    try:
                        await self._converse(agent, user)
                    except _End as end:
                        reason, error = end.reason, end.error
                if scope.cancelled_caught:
                    reason, error = (
                        TerminationReason.TIMEOUT,
                        f"timed out after {self.limits.timeout_s}s",
                    )
                final = await agent_fork.state_hash()
                user_final = await user_fork.state_hash() if user_fork else None
                checked = [await self._check(a) for a in self.task.assertions]
            finally:
                if user_fork is not None:
                    await user_fork.aclose()
        if self._fork_file is not None:  # the trajectory holds what matters: the final hash
            self._fork_file.unlink(missing_ok=True)
        # Plain data validated once, in pydantic-core, rather than a model per message.
        return Trajectory.model_validate(
            {
                "task_id": self.task.id,
                "trial": self.trial,
                "domain": self.env.name,
                "split": self.task.split,
                "messages": to_chat_messages(agent.history),
                "tool_calls": self._tool_log,
                "termination": reason,
                "error": error,
                "turns": self._turns,
                "steps": agent.steps,
                "initial_hash": initial,
                "final_hash": final,
                "user_initial_hash": user_initial,
                "user_final_hash": user_final,
                "assertions": checked,
                "agent_model": f"{self.agent_model.system}:{self.agent_model.model_name}",
                "user_model": f"{self.user_model.system}:{self.user_model.model_name}",
                "usage": {"agent": agent.usage(), "user": user.usage()},
                "timings": {
                    "started_at": started,
                    "duration_s": time.perf_counter() - t0,
                    "agent_model_s": agent.model_s,
                    "user_model_s": user.model_s,
                    "tools_s": self._tools_s,
                },
            }
        )

    async def _fork_agent_env(self) -> Fork:
        """In memory by default; on disk through aiosqlite when a fork directory is set."""
        if self._fork_file is None:
            return self.env.fork()
        self._fork_file.unlink(missing_ok=True)  # a stale copy from a killed run
        return await self.env.fork_file(self._fork_file)

    async def _converse(self, agent: _Side, user: _Side) -> None:
        """Alternate user and agent turns until the user stops or a limit is hit."""
        while True:
            user_text = await self._turn(user)
            if STOP_SIGNAL in user_text:
                agent.history.append(ModelRequest(parts=[UserPromptPart(user_text)]))
                return
            if self._turns >= self.limits.max_turns:
                raise _End(TerminationReason.MAX_TURNS)
            self._turns += 1
            agent.history.append(ModelRequest(parts=[UserPromptPart(user_text)]))
            agent_text = await self._turn(agent)
            user.history.append(ModelRequest(parts=[UserPromptPart(agent_text)]))

    async def _turn(self, side: _Side) -> str:
        """Request until the side answers in text; run its tool calls in between."""
        while True:
            response = await self._request(side)
            side.history.append(response)
            calls = [p for p in response.parts if isinstance(p, ToolCallPart)]
            text = "".join(p.content for p in response.parts if isinstance(p, TextPart))
            if not calls:
                if text.strip():
                    return text
                # An empty reply is a malformed reply: record it and ask again.
                self._record_error(side, ToolErrorKind.MALFORMED_REPLY, "empty reply")
                side.history.append(
                    ModelRequest(
                        parts=[
                            SystemPromptPart("Your reply was empty. Reply in text or call a tool.")
                        ]
                    )
                )
            else:
                returns = [await self._call_tool(side, call) for call in calls]
                side.history.append(ModelRequest(parts=returns))
            if side.errors_in_a_row >= self.limits.max_consecutive_errors:
                raise _End(
                    TerminationReason.TOO_MANY_ERRORS,
                    f"{side.name}: {side.errors_in_a_row} failed calls in a row",
                )

    async def _request(self, side: _Side) -> ModelResponse:
        if side.steps >= self.limits.max_steps:
            raise _End(TerminationReason.MAX_STEPS)
        side.steps += 1
        retries = 0

        def on_retry(attempt: int, exc: BaseException) -> None:
            nonlocal retries
            retries = attempt

        history = side.history
        if side.escape_special_tokens:
            history = side.model.prepare_messages(history, side.params)
        t0 = time.perf_counter()
        try:
            response = await request_with_retry(
                side.model, history, side.settings, side.params, self.retry, on_retry
            )
        except Exception as exc:
            raise _End(
                TerminationReason.MODEL_ERROR, f"{side.name} model: {type(exc).__name__}: {exc}"
            ) from exc
        elapsed = time.perf_counter() - t0
        side.model_s += elapsed
        side.requests += 1
        side.input_tokens += response.usage.input_tokens
        side.output_tokens += response.usage.output_tokens
        if self._emit is not None:
            self._emit(
                ModelCalled(
                    task_id=self.task.id,
                    trial=self.trial,
                    side=side.name,
                    latency_ms=elapsed * 1e3,
                    retries=retries,
                )
            )
        return response

    async def _run_function(self, call: EnvCall) -> Any:
        """An environment function on its side's fork, then the sync (as τ²-bench runs them)."""
        fork = self._user_fork if call.side == "user" else self._agent_fork
        if fork is None:
            raise UserError(f"task {self.task.id!r}: {call.name!r} needs a user environment")
        result = await fork.run_function(call.name, call.arguments)
        if self._sync and self._agent_fork and self._user_fork:
            await self._sync(self._agent_fork, self._user_fork)
        return result

    async def _check(self, assertion: EnvAssertion) -> AssertionRecord:
        result = await self._run_function(assertion)
        return {
            "side": assertion.side,
            "name": assertion.name,
            "arguments": assertion.arguments,
            "expected": assertion.expected,
            "result": result,
            "passed": result == assertion.expected,
        }

    async def _call_tool(self, side: _Side, call: ToolCallPart) -> ToolReturnPart:
        t0 = time.perf_counter()
        error: ToolErrorKind | None
        if side.fork is None:
            content, error, changed = (
                f"Error: the {side.name} has no tools; {call.tool_name!r} does not exist",
                ToolErrorKind.UNKNOWN_TOOL,
                False,
            )
        else:
            obs = await side.fork.call(call.tool_name, call.args)
            content, error, changed = obs.content, obs.error, obs.changed
            if obs.ok and self._sync and self._agent_fork and self._user_fork:
                try:
                    await self._sync(self._agent_fork, self._user_fork)
                except Exception as exc:  # like a crashing tool: the call's recorded error
                    log.warning("sync_crashed", task=self.task.id, error=repr(exc))
                    content, error = f"Error: {exc}", ToolErrorKind.EXECUTION_ERROR
        elapsed = time.perf_counter() - t0
        self._tools_s += elapsed
        self._tool_log.append(
            {
                "side": side.name,
                "step": side.steps - 1,
                "tool_call_id": call.tool_call_id,
                "name": call.tool_name,
                "arguments": call.args if isinstance(call.args, str) else call.args_as_json_str(),
                "observation": content,
                "error": error,
                "changed": changed,
                "duration_ms": elapsed * 1e3,
            }
        )
        if self._emit is not None:
            self._emit(
                ToolCalled(
                    task_id=self.task.id,
                    trial=self.trial,
                    side=side.name,
                    name=call.tool_name,
                    error=error,
                    duration_ms=elapsed * 1e3,
                )
            )
        self._count(side, error is not None)
        return ToolReturnPart(call.tool_name, content, tool_call_id=call.tool_call_id)

    def _record_error(self, side: _Side, kind: ToolErrorKind, msg: str) -> None:
        self._tool_log.append(
            {
                "side": side.name,
                "step": side.steps - 1,
                "tool_call_id": "",
                "name": "",
                "arguments": "",
                "observation": f"Error: {msg}",
                "error": kind,
                "changed": False,
                "duration_ms": 0.0,
            }
        )
        self._count(side, True)

    def _count(self, side: _Side, failed: bool) -> None:
        side.errors_in_a_row = side.errors_in_a_row + 1 if failed else 0


def _escapes(model: Model) -> bool:
    if model.system == "offline":  # our policies never see a chat template
        return False
    try:
        return bool(model.profile.get("may_tokenize_special_tokens_in_content", False))
    except NotImplementedError:
        return False
