"""The hand-written vertical domains by name, each with the replay of its benchmark's task files.

A replayer reads a task file of the benchmark the domain reproduces (τ-bench's JSONL for retail
and airline, τ²-bench's JSON list or JSONL for telecom) and replays every task's gold actions on
a fresh database, giving one record per task in the shape of that benchmark's replay records.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from agentscaler.domains.airline import AIRLINE_VIEW, airline
from agentscaler.domains.retail import RETAIL_VIEW, retail
from agentscaler.domains.tau.tasks import load_tau_tasks, replay_record
from agentscaler.domains.tau.view import TauView
from agentscaler.domains.telecom.replay import replay_file as replay_telecom
from agentscaler.runtime import Domain, Environment

Replayer = Callable[[Path, str, Callable[[], None]], Awaitable[list[dict[str, Any]]]]


def _tau(name: str, make: Callable[[], Domain], view: TauView) -> Replayer:
    async def replay(path: Path, split: str, advance: Callable[[], None]) -> list[dict[str, Any]]:
        tasks = load_tau_tasks(path, name, split)
        env = await Environment.build(make())
        out = []
        for task in tasks:
            out.append(await replay_record(env, view, task))
            advance()
        return out

    return replay


REPLAYERS: dict[str, Replayer] = {
    "retail": _tau("retail", retail, RETAIL_VIEW),
    "airline": _tau("airline", airline, AIRLINE_VIEW),
    "telecom": replay_telecom,
}
