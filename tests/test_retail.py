"""τ-bench's retail domain: lossless data, its tools' exact observations, its data hash."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from agentscaler.domains.retail import DATA, RETAIL_VIEW, retail, source_data
from agentscaler.domains.tau.data_hash import data_hash
from agentscaler.domains.tau.tasks import load_tau_tasks, replay_record
from agentscaler.runtime import (
    Environment,
    Scheduler,
    Task,
    gold_agent,
    scripted_user,
    with_gold_hash,
)

pytestmark = pytest.mark.anyio
REPLAY = Path(__file__).parent / "data" / "derived" / "tau-bench_gold_replay_dev.jsonl"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def env() -> Environment:
    return await Environment.build(retail())


def _tasks() -> list[Task]:
    return load_tau_tasks(DATA / "tasks_train.jsonl", "retail", "train") + load_tau_tasks(
        DATA / "tasks_dev.jsonl", "retail", "dev"
    )


async def test_export_gives_back_the_source_json_byte_for_byte(env: Environment) -> None:
    """Every collection (and so every table behind it) round-trips, key order included."""
    async with env.fork() as state:
        exported = await RETAIL_VIEW.data(state)
    for name, source in source_data().items():
        assert json.dumps(exported[name]) == json.dumps(source), name


async def test_agent_sees_tau_bench_tools_and_policy(env: Environment) -> None:
    upstream = orjson.loads((DATA / "tools.json").read_bytes())
    assert [t.openai_schema() for t in env.tools.values()] == upstream
    assert env.domain.policy == (DATA / "policy.md").read_text()


def test_tau_bench_tasks_load_as_tasks() -> None:
    tasks = _tasks()
    assert len(tasks) == 520
    first = tasks[0]
    assert first.id == "retail/train/0" and first.split == "train"
    assert first.user_id == "omar_anderson_3203"
    assert first.gold_calls[0].name == "return_delivered_order_items"
    assert {t.split for t in tasks} == {"train", "dev"}


async def test_gold_replay_reproduces_every_upstream_observation_and_hash(
    env: Environment,
) -> None:
    """All 520 train/dev tasks: each gold call's observation (errors included) and τ-bench's
    final data hash equal what τ-bench's own tools produced."""
    expected = {
        (r["split"], r["task_index"]): r
        for r in map(orjson.loads, REPLAY.read_bytes().splitlines())
    }
    tasks = _tasks()
    assert len(expected) == len(tasks) == 520
    errors = 0
    for task in tasks:
        got = await replay_record(env, RETAIL_VIEW, task)
        assert got == expected[(got["split"], got["task_index"])], task.id
        errors += sum(o["observation"].startswith("Error") for o in got["gold_action_observations"])
    assert errors > 0  # upstream's own defective tasks are reproduced too


async def test_cached_hash_equals_the_reference(env: Environment) -> None:
    """The incremental τ-bench hash equals τ-bench's full computation after writes."""
    task = _tasks()[5]
    async with env.fork() as state:
        assert await RETAIL_VIEW.data_hash(state) == data_hash(source_data())
        for call in task.gold_calls:
            await state.call(call.name, call.arguments)
        assert await RETAIL_VIEW.data_hash(state) == data_hash(await RETAIL_VIEW.data(state))


async def test_sessions_run_unchanged_on_tau_bench_tasks(env: Environment, tmp_path: Path) -> None:
    """τ-bench's dev tasks through the scheduler (offline gold agent and scripted user, with the
    retail policy as the system prompt): every session ends in its task's gold state."""
    tasks = []
    for task in load_tau_tasks(DATA / "tasks_dev.jsonl", "retail", "dev"):
        replay = await env.replay((c.name, c.arguments) for c in task.gold_calls)
        tasks.append(with_gold_hash(task, replay.final_hash))
    async with Scheduler(env, agent=gold_agent(), user=scripted_user(), run_dir=tmp_path) as run:
        summary = await run.run(tasks)
    assert summary.written == len(tasks) == 20
    lines = (tmp_path / "trajectories" / "trajectories.jsonl").read_bytes().splitlines()
    gold = {t.id: t.gold_hash for t in tasks}
    for trajectory in map(orjson.loads, lines):
        assert trajectory["final_hash"] == gold[trajectory["task_id"]], trajectory["task_id"]
        assert trajectory["split"] == "dev"
        assert trajectory["messages"][0] == {"role": "system", "content": env.domain.policy}


async def test_tool_arguments_are_stored_as_they_came(env: Environment) -> None:
    """τ-bench stores a tool's arguments unvalidated: a zip code sent as a number and an empty
    second address line read back as sent, in the observation, the data and its hash."""
    address = {"address1": "1 A St", "address2": None, "city": "X", "state": "CA", "country": "USA"}
    async with env.fork() as state:
        changed = await state.call(
            "modify_user_address", {"user_id": "noah_brown_6181", **address, "zip": 12345}
        )
        assert '"address2": null' in changed.content and '"zip": 12345' in changed.content
        shown = await state.call("get_user_details", {"user_id": "noah_brown_6181"})
        assert shown.content == changed.content
        assert await RETAIL_VIEW.data_hash(state) == data_hash(await RETAIL_VIEW.data(state))
