"""Live counters of a run, folded from its events: the numbers a dashboard shows.

A subscriber of the scheduler's event bus; `snapshot()` turns the counts into a `RunProgress`
event. Latency percentiles and the tool-call rate cover the calls since the previous snapshot,
so they follow the run as it speeds up or slows down.
"""

from __future__ import annotations

import time
from collections import Counter

from .events import (
    Event,
    ModelCalled,
    RunProgress,
    SessionFailed,
    SessionFinished,
    SessionStarted,
    ToolCalled,
)
from .trajectory import TerminationReason


def percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


class LiveCounters:
    """Counts sessions, calls and errors as events arrive; call it with each event."""

    def __init__(self, pending: int) -> None:
        self.pending = pending  # sessions this run will start
        self.started = 0
        self.done = 0
        self.failed = 0
        self.tool_calls = 0
        self.model_calls = 0
        self.errors: Counter[str] = Counter()
        self._latencies: list[float] = []
        self._t0 = self._last_t = time.perf_counter()
        self._last_tool_calls = 0

    def __call__(self, event: Event) -> None:
        match event:
            case ToolCalled(error=error):
                self.tool_calls += 1
                if error is not None:
                    self.errors[error.value] += 1
            case ModelCalled(latency_ms=latency):
                self.model_calls += 1
                self._latencies.append(latency)
            case SessionStarted():
                self.started += 1
            case SessionFinished(termination=termination):
                self.done += 1
                if termination is not TerminationReason.USER_STOP:
                    self.errors[termination.value] += 1
            case SessionFailed():
                self.failed += 1
                self.errors["session_crashed"] += 1

    def snapshot(self) -> RunProgress:
        """The counters now; starts the next interval for rates and percentiles."""
        now = time.perf_counter()
        latencies, self._latencies = sorted(self._latencies), []
        rate = (self.tool_calls - self._last_tool_calls) / max(now - self._last_t, 1e-9)
        self._last_t, self._last_tool_calls = now, self.tool_calls
        return RunProgress(
            queued=self.pending - self.started,
            running=self.started - self.done - self.failed,
            done=self.done,
            failed=self.failed,
            tool_calls=self.tool_calls,
            tool_calls_per_s=round(rate, 1),
            model_calls=self.model_calls,
            latency_ms={f"p{q}": round(percentile(latencies, q), 2) for q in (50, 95, 99)},
            errors=dict(self.errors),
            elapsed_s=round(now - self._t0, 3),
        )
