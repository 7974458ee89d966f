"""Runs the example tasks x many trials into a run directory (killed and resumed by a test)."""

from __future__ import annotations

import sys

import anyio

from agentscaler.runtime import (
    Environment,
    ErrorInjection,
    GoldAgent,
    Scheduler,
    SchedulerConfig,
    ScriptedUser,
    Task,
)
from agentscaler.runtime.example import bookstore, bookstore_tasks


async def main(run_dir: str, trials: int, latency_s: float) -> None:
    env = await Environment.build(bookstore())
    kinds = {n: t.kind for n, t in env.tools.items()}
    injection = ErrorInjection(bad_argument=0.2, extra_read=0.2, wrong_write=0.2)

    def agent(task: Task, trial: int, env: Environment) -> GoldAgent:
        return GoldAgent(task, kinds, injection, seed=str(trial), latency_s=latency_s)

    config = SchedulerConfig(trials=trials, concurrency=16)
    user = lambda task, trial, env: ScriptedUser(task)  # noqa: E731
    async with Scheduler(env, agent=agent, user=user, run_dir=run_dir, config=config) as s:
        summary = await s.run(bookstore_tasks())
    print(summary.model_dump_json())


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
