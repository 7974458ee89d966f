"""Choosing models: any pydantic-ai `Model`, an OpenAI-compatible server, or an offline policy.

Sessions need a model per (task, trial): offline policies are built from the task, and an
app may want per-task settings. A `ModelFactory` does that; a plain `Model` is shared.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TypeAlias

from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings

from .environment import Environment
from .errors import UserError
from .offline import ErrorInjection, GoldAgent, ScriptedUser
from .retry import is_transient
from .task import Task

ModelFactory: TypeAlias = Callable[[Task, int, Environment], Model]


def as_factory(model: Model | ModelFactory) -> ModelFactory:
    """A factory that returns `model` itself when given a plain model."""
    if isinstance(model, Model):
        return lambda task, trial, env: model
    return model


def openai_compatible(
    model_name: str, base_url: str, api_key: str = "unused", timeout_s: float = 600.0
) -> Model:
    """A model served over the OpenAI chat API (vLLM, SGLang, Ollama, llama.cpp, ...).

    The client's own retries are off: the scheduler's `RetryPolicy` retries transient errors,
    and two nested retry loops would multiply the waits.
    """
    from openai import AsyncOpenAI  # imported on use: it costs ~0.6 s at startup
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    client = AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout_s)
    return OpenAIChatModel(model_name, provider=OpenAIProvider(openai_client=client))


class Replicas(WrapperModel):
    """One session's model among replicas of one served model (several vLLM/SGLang servers).

    The session stays on its replica, so that replica's prefix cache holds the whole
    conversation; a transient failure (5xx, timeout, refused connection) moves it to the next
    replica at once, and only when every replica failed does the error reach the session's
    retry policy."""

    def __init__(self, replicas: Sequence[Model], start: int) -> None:
        super().__init__(replicas[start % len(replicas)])
        self._replicas = list(replicas)
        self._at = start % len(replicas)

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        for _ in range(len(self._replicas) - 1):
            try:
                return await self.wrapped.request(
                    messages, model_settings, model_request_parameters
                )
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self._at = (self._at + 1) % len(self._replicas)
                self.wrapped = self._replicas[self._at]
        return await self.wrapped.request(messages, model_settings, model_request_parameters)


def load_balanced(replicas: Sequence[Model]) -> ModelFactory:
    """Sessions spread round-robin over replicas of one model, each sticking to its own."""
    if not replicas:
        raise UserError("load_balanced needs at least one model")
    turn = itertools.count()
    return lambda task, trial, env: Replicas(replicas, next(turn))


def gold_agent(injection: ErrorInjection | None = None, latency_s: float = 0.0) -> ModelFactory:
    """Offline agent that executes each task's gold calls (with optional injected mistakes)."""
    inj = injection or ErrorInjection()

    def make(task: Task, trial: int, env: Environment) -> Model:
        kinds = {name: t.kind for name, t in env.tools.items()}
        return GoldAgent(task, kinds, inj, seed=str(trial), latency_s=latency_s)

    return make


def scripted_user(max_answers: int = 3, latency_s: float = 0.0) -> ModelFactory:
    """Offline user that states each task's intent and stops once the agent reports."""
    return lambda task, trial, env: ScriptedUser(task, max_answers, latency_s)
