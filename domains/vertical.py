"""The hand-written vertical domains by name: the replay of their benchmarks' task files, and the
training tasks the project ships for them.

A replayer reads a task file of the benchmark the domain reproduces (τ-bench's JSONL for retail
and airline, τ²-bench's JSON list or JSONL for telecom) and replays every task's gold actions on
a fresh database, giving one record per task in the shape of that benchmark's replay records.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentscaler.domains import retail as retail_package
from agentscaler.domains import telecom as telecom_package
from agentscaler.domains.airline import AIRLINE_VIEW, airline
from agentscaler.domains.retail import RETAIL_VIEW, retail
from agentscaler.domains.tau.tasks import load_tau_tasks, replay_record
from agentscaler.domains.tau.view import TauView
from agentscaler.domains.telecom import telecom, telecom_user
from agentscaler.domains.telecom.replay import load_tau2_tasks, tau2_task
from agentscaler.domains.telecom.replay import replay_file as replay_telecom
from agentscaler.runtime import Domain, Environment, Task

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


@dataclass(frozen=True)
class TrainingSet:
    """A vertical domain ready to simulate: its environment (and the user's, for dual control)
    and the benchmark tasks it may train on (never its test split)."""

    env: Environment
    user_env: Environment | None
    tasks: list[Task]


async def _retail() -> TrainingSet:
    data = retail_package.DATA
    tasks = load_tau_tasks(data / "tasks_train.jsonl", "retail", "train")
    tasks += load_tau_tasks(data / "tasks_dev.jsonl", "retail", "dev")
    return TrainingSet(await Environment.build(retail()), None, tasks)


async def _telecom() -> TrainingSet:
    raw = load_tau2_tasks(telecom_package.DATA / "tasks_train.json")
    return TrainingSet(
        await Environment.build(telecom()),
        await Environment.build(telecom_user()),
        [tau2_task(task, "train") for task in raw],
    )


# τ-bench's airline tasks are all test tasks (what users evaluate on): airline has none to train on.
TRAINING: dict[str, Callable[[], Awaitable[TrainingSet]]] = {
    "retail": _retail,
    "telecom": _telecom,
}
