"""τ-bench task files (one JSON task per line: user_id, instruction, actions, outputs) as our
`Task`s, and their gold replay in the shape of τ-bench's replay records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from agentscaler.runtime import Environment, GoldCall, Task, UserError

from .view import TauView


def load_tau_tasks(path: Path, domain: str, split: str) -> list[Task]:
    """Task ids are `{domain}/{split}/{task_index}`; a bad line names the file, line and field."""
    tasks = []
    for no, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = orjson.loads(line)
            tasks.append(
                Task(
                    id=f"{domain}/{split}/{raw.get('task_index', no - 1)}",
                    domain=domain,
                    intent=raw["instruction"],
                    user_id=raw.get("user_id"),
                    gold_calls=tuple(
                        GoldCall(name=a["name"], arguments=a["kwargs"]) for a in raw["actions"]
                    ),
                    gold_outputs=tuple(raw.get("outputs") or ()),
                    split=split,
                )
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{path}, line {no}: {type(exc).__name__}: {exc}") from exc
    return tasks


async def replay_record(env: Environment, view: TauView, task: Task) -> dict[str, Any]:
    """Replay a task's gold actions on a fresh database: every observation, τ-bench's initial
    and final data hashes and whether the data changed."""
    async with env.fork() as state:
        initial = await view.data_hash(state)
        observations = []
        for call in task.gold_calls:
            obs = await state.call(call.name, call.arguments)
            observations.append({"name": call.name, "observation": obs.content})
        final = await view.data_hash(state)
    split, index = task.id.rsplit("/", 2)[1:]
    return {
        "domain": task.domain,
        "split": split,
        "task_index": int(index) if index.isdigit() else index,
        "initial_data_hash": initial,
        "gold_final_data_hash": final,
        "db_changed": final != initial,
        "gold_action_observations": observations,
    }
