"""Run events: a typed stream that the dashboard, progress bars and `events.jsonl` subscribe to.

Emission is synchronous and cheap (a pydantic model and a loop over callbacks): sessions emit
from the hot path. Async consumers get a bounded stream that drops, and counts, what a slow
reader cannot keep up with, so a stalled dashboard never stalls the simulation.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated, Literal

import anyio
import orjson
from anyio.streams.memory import MemoryObjectReceiveStream
from pydantic import Field, TypeAdapter

from .errors import ClosedError
from .tools import ToolErrorKind
from .trajectory import TerminationReason

# Events are slotted dataclasses, not pydantic models: sessions emit tens of thousands a second,
# construction must cost well under a microsecond, and orjson writes them natively.
# `EVENT_ADAPTER` validates them when events.jsonl is read back.


@dataclass(slots=True, frozen=True, kw_only=True)
class _Event:
    task_id: str
    trial: int
    t: float = field(default_factory=time.time)


@dataclass(slots=True, frozen=True, kw_only=True)
class SessionStarted(_Event):
    domain: str
    type: Literal["session_started"] = "session_started"


@dataclass(slots=True, frozen=True, kw_only=True)
class ModelCalled(_Event):
    side: Literal["agent", "user"]
    latency_ms: float
    retries: int = 0
    type: Literal["model_called"] = "model_called"


@dataclass(slots=True, frozen=True, kw_only=True)
class ToolCalled(_Event):
    side: Literal["agent", "user"]
    name: str
    error: ToolErrorKind | None
    duration_ms: float
    type: Literal["tool_called"] = "tool_called"


@dataclass(slots=True, frozen=True, kw_only=True)
class SessionFinished(_Event):
    termination: TerminationReason
    steps: int
    duration_s: float
    type: Literal["session_finished"] = "session_finished"


@dataclass(slots=True, frozen=True, kw_only=True)
class SessionFailed(_Event):
    """A session crashed (a bug, not a model's mistake); nothing was written for it."""

    error: str
    type: Literal["session_failed"] = "session_failed"


@dataclass(slots=True, frozen=True, kw_only=True)
class RunProgress:
    """A run's live counters, emitted every `SchedulerConfig.progress_interval_s` and at the end:
    what the dashboard and the progress bar show. Rates and percentiles cover the last interval."""

    queued: int
    running: int
    done: int
    failed: int
    tool_calls: int
    tool_calls_per_s: float
    model_calls: int
    latency_ms: dict[str, float]  # p50 / p95 / p99 of the interval's model calls
    errors: dict[str, int]  # tool error kinds, terminations other than user_stop, crashes
    elapsed_s: float
    t: float = field(default_factory=time.time)
    type: Literal["run_progress"] = "run_progress"


Event = Annotated[
    SessionStarted | ModelCalled | ToolCalled | SessionFinished | SessionFailed | RunProgress,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
Subscriber = Callable[[Event], None]


class EventBus:
    """Fan-out of events to subscribers; `emit` never blocks."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self.dropped = 0

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Call `fn` for every event; returns the function that unsubscribes it."""
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn)

    def emit(self, event: Event) -> None:
        for fn in self._subscribers:
            fn(event)

    @asynccontextmanager
    async def stream(
        self, max_buffer: int = 10_000
    ) -> AsyncIterator[MemoryObjectReceiveStream[Event]]:
        """An async iterator of events; beyond `max_buffer` unread events, new ones are dropped."""
        send, receive = anyio.create_memory_object_stream[Event](max_buffer)

        def push(event: Event) -> None:
            try:
                send.send_nowait(event)
            except anyio.WouldBlock:
                self.dropped += 1

        unsubscribe = self.subscribe(push)
        try:
            async with receive:
                yield receive
        finally:
            unsubscribe()
            send.close()


class EventLog:
    """Appends every event to `events.jsonl` (buffered: events are telemetry, not state)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[bytes] | None = None

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("ab", buffering=1 << 16)

    def __call__(self, event: Event) -> None:
        if self._fh is None:
            raise ClosedError(f"event log {self.path} is not open")
        self._fh.write(orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE))

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
