"""Retries with backoff for model calls that fail transiently (rate limits, 5xx, timeouts)."""

from __future__ import annotations

import random
from collections.abc import Callable

import anyio
from pydantic import BaseModel, ConfigDict, Field
from pydantic_ai.exceptions import (
    ModelConnectionError,
    ModelHTTPError,
    ModelRateLimitError,
    ModelRequestTimeout,
    ModelServerError,
    ModelUnavailableError,
)
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.settings import ModelSettings

from .errors import TransientModelError

_TRANSIENT_TYPES = (
    TransientModelError,
    ModelRateLimitError,
    ModelUnavailableError,
    ModelServerError,
    ModelConnectionError,
    ModelRequestTimeout,
    ConnectionError,
    TimeoutError,
)
_TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same request may succeed."""
    if isinstance(exc, ModelHTTPError):
        return exc.status_code in _TRANSIENT_STATUS
    return isinstance(exc, _TRANSIENT_TYPES)


class RetryPolicy(BaseModel):
    """Exponential backoff with full jitter, capped; attempts include the first try."""

    model_config = ConfigDict(frozen=True)

    max_attempts: int = Field(default=4, ge=1)
    base_delay_s: float = Field(default=0.5, ge=0)
    max_delay_s: float = Field(default=8.0, ge=0)

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay_s, self.base_delay_s * 2**attempt))


async def request_with_retry(
    model: Model,
    messages: list[ModelMessage],
    settings: ModelSettings | None,
    params: ModelRequestParameters,
    policy: RetryPolicy,
    on_retry: Callable[[int, BaseException], None] | None = None,
) -> ModelResponse:
    """`model.request` retried on transient errors; the last error propagates."""
    attempt = 0
    while True:
        try:
            return await model.request(messages, settings, params)
        except Exception as exc:
            attempt += 1
            if attempt >= policy.max_attempts or not is_transient(exc):
                raise
            if on_retry is not None:
                on_retry(attempt, exc)
            await anyio.sleep(policy.delay(attempt - 1))
