"""Train/held-out discipline: a split by task id, recorded in every trajectory."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from agentscaler.domains.retail import DATA
from agentscaler.domains.tau.tasks import load_tau_tasks
from agentscaler.runtime import (
    Environment,
    Scheduler,
    Task,
    UserError,
    assign_split,
    gold_agent,
    scripted_user,
)

pytestmark = pytest.mark.anyio


def _retail() -> list[Task]:
    return load_tau_tasks(DATA / "tasks_train.jsonl", "retail", "train")


def test_split_is_decided_by_id_alone() -> None:
    """The same ids land on the same side whatever else is in the set; listed ids are held out."""
    tasks = _retail()
    whole = {t.id: t.split for t in assign_split(tasks, test_fraction=0.1, seed="s")}
    held = [i for i, s in whole.items() if s == "test"]
    assert 25 <= len(held) <= 75  # ~10% of 500
    part = assign_split(tasks[::3], test_fraction=0.1, seed="s")
    assert all(whole[t.id] == t.split for t in part)
    other = {t.id: t.split for t in assign_split(tasks, test_fraction=0.1, seed="t")}
    assert other != whole
    listed = assign_split(tasks[:3], test_ids={tasks[1].id})
    assert [t.split for t in listed] == ["train", "test", "train"]
    with pytest.raises(UserError, match="test_fraction"):
        assign_split(tasks, test_fraction=1.5)


async def test_trajectories_record_their_task_split(
    env: Environment, tasks: list[Task], tmp_path: Path
) -> None:
    split = assign_split(tasks, test_ids={tasks[0].id})
    async with Scheduler(
        env, agent=gold_agent(), user=scripted_user(), run_dir=tmp_path
    ) as scheduler:
        await scheduler.run(split)
    lines = (tmp_path / "trajectories" / "trajectories.jsonl").read_bytes().splitlines()
    recorded = {(r := orjson.loads(line))["task_id"]: r["split"] for line in lines}
    assert recorded == {t.id: t.split for t in split}
    assert recorded[tasks[0].id] == "test"
