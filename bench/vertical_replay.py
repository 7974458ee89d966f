"""Vertical-domain replay benchmark (not a test): the 520 τ-bench retail train/dev tasks, each
on a fresh database, gold actions replayed, final state hashed.

Ours: a fork of the built template per task, with (i) our canonical state hash and (ii) τ-bench's
data hash (cached per record). Baseline, what τ-bench does per task: `copy.deepcopy` of the JSON
data and `sha256(str(to_hashable(data)))`; its tools over dicts are left out (microseconds next
to the copy and the hash), which flatters the baseline. Ratios are measured in the same run.

Usage: uv run python bench/vertical_replay.py
"""

from __future__ import annotations

import copy
import time

import anyio

from agentscaler.domains.retail import DATA, RETAIL_VIEW, retail, source_data
from agentscaler.domains.tau.data_hash import data_hash
from agentscaler.domains.tau.tasks import load_tau_tasks
from agentscaler.runtime import Environment, Task


async def ours(env: Environment, tasks: list[Task], tau_hash: bool) -> float:
    start = time.perf_counter()
    for task in tasks:
        async with env.fork() as state:
            for call in task.gold_calls:
                await state.call(call.name, call.arguments)
            if tau_hash:
                await RETAIL_VIEW.data_hash(state)
            else:
                await state.state_hash()
    return time.perf_counter() - start


def baseline(tasks: list[Task]) -> float:
    data = source_data()
    start = time.perf_counter()
    for _ in tasks:
        data_hash(copy.deepcopy(data))
    return time.perf_counter() - start


async def main() -> None:
    tasks = load_tau_tasks(DATA / "tasks_train.jsonl", "retail", "train")
    tasks += load_tau_tasks(DATA / "tasks_dev.jsonl", "retail", "dev")
    start = time.perf_counter()
    env = await Environment.build(retail())
    print(
        f"retail template built in {time.perf_counter() - start:.2f}s, image {len(env.image)} bytes"
    )
    async with env.fork() as state:
        await RETAIL_VIEW.data_hash(state)  # builds the per-record cache once
    await ours(env, tasks[:50], tau_hash=False)  # warm-up: connections, statement caches
    base = baseline(tasks)
    canonical = min([await ours(env, tasks, tau_hash=False) for _ in range(2)])
    tau = min([await ours(env, tasks, tau_hash=True) for _ in range(2)])
    n = len(tasks)
    print(f"{n} tasks, ms per task: baseline (deepcopy + τ-bench hash) {base / n * 1e3:.2f}")
    print(
        f"  ours, canonical hash {canonical / n * 1e3:.2f}: ratio {base / canonical:.1f}x (target >= 100x)"
    )
    print(f"  ours, τ-bench hash {tau / n * 1e3:.2f}: ratio {base / tau:.1f}x (target >= 20x)")


if __name__ == "__main__":
    anyio.run(main)
