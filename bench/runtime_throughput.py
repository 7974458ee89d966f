"""Runtime throughput benchmark (not a test): prints its figures and the ratios to baselines.

(a) 2,000 concurrent sessions, offline policies, 10 model calls per session (8 agent + 2 user),
    1 s injected latency per call: achieved / ideal sessions per second (target >= 0.9), both
    sustained (3 x 2,000 sessions through 2,000 slots) and as one burst started at t=0.
(b) zero latency: CPU per agent step (model step + tool call + record) of our loop vs the same
    sessions through pydantic-ai's `Agent.run` (target: ours >= 20x faster).
(c) the same zero-latency sessions with each fork on disk through aiosqlite vs in memory on
    the loop thread (the chosen path).
(d) peak RSS per concurrent session beyond its database image, measured during the burst
    run of (a), the first after warm-up (target <= 50 KB).

Usage: uv run python bench/runtime_throughput.py [--sessions 2000] [--latency 1.0]
The machine is noisy (2 cores): compare the ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import psutil
from pydantic_ai import Agent
from pydantic_ai.models import Model

from agentscaler.runtime import (
    Environment,
    EnvironmentToolset,
    GoldAgent,
    GoldCall,
    Scheduler,
    SchedulerConfig,
    ScriptedUser,
    Session,
    Task,
)
from agentscaler.runtime.example import bookstore

PLANS = [  # 7 gold calls each -> 8 agent requests (7 calls + report) + 2 user requests
    ("cus_ada", "Erich Gamma", "978-0201633610"),
    ("cus_kurt", "Douglas Hofstadter", "978-0465026562"),
]


def make_tasks(n: int) -> list[Task]:
    tasks = []
    for i in range(n):
        customer, author, isbn = PLANS[i % len(PLANS)]
        calls = [
            ("get_customer", {"customer_id": customer}),
            ("find_books", {"author": author}),
            ("place_order", {"customer_id": customer, "isbn": isbn, "quantity": 1}),
            ("get_order", {"order_id": 4}),
            ("cancel_order", {"order_id": 4}),
            ("get_customer", {"customer_id": customer}),
            ("get_order", {"order_id": 1}),
        ]
        tasks.append(
            Task(
                id=f"bench-{i}",
                domain="bookstore",
                intent=f"I am {customer}; buy {isbn}, then cancel that order.",
                gold_calls=tuple(GoldCall(name=c, arguments=a) for c, a in calls),
            )
        )
    return tasks


def kinds(env: Environment) -> dict[str, Any]:
    return {name: t.kind for name, t in env.tools.items()}


async def bounded(n: int, concurrency: int, job: Callable[[int], Awaitable[None]]) -> None:
    limiter = anyio.CapacityLimiter(concurrency)

    async def one(i: int) -> None:
        async with limiter:
            await job(i)

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)


async def run_latency(
    env: Environment, total: int, concurrency: int, latency: float, run_dir: Path
) -> tuple[float, int, float, dict[str, int]]:
    """Runs `total` sessions through `concurrency` slots; returns wall, peak RSS, base RSS."""
    proc = psutil.Process()

    def agent(task: Task, trial: int, env: Environment) -> Model:
        return GoldAgent(task, kinds(env), latency_s=latency)

    def user(task: Task, trial: int, env: Environment) -> Model:
        return ScriptedUser(task, latency_s=latency)

    tasks = make_tasks(total)
    gc.collect()
    base = peak = proc.memory_info().rss
    config = SchedulerConfig(concurrency=concurrency)
    async with Scheduler(env, agent=agent, user=user, run_dir=run_dir, config=config) as s:
        done = anyio.Event()

        async def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, proc.memory_info().rss)
                await anyio.sleep(0.1)

        t0 = time.perf_counter()
        async with anyio.create_task_group() as tg:
            tg.start_soon(sample)
            summary = await s.run(tasks)
            done.set()
        wall = time.perf_counter() - t0
    return wall, peak, base, summary.by_termination


async def part_a_and_d(env: Environment, n: int, latency: float) -> None:
    calls = 10  # model calls per session
    with tempfile.TemporaryDirectory() as tmp:
        await run_latency(env, 50, 50, 0.01, Path(tmp) / "warm")  # arenas, caches, imports
        burst_wall, peak, base, ends = await run_latency(env, n, n, latency, Path(tmp) / "burst")
        waves = 3
        sus_wall, _, _, _ = await run_latency(env, waves * n, n, latency, Path(tmp) / "sustained")
    ideal_rate = n / (calls * latency)  # n sessions side by side, each calls x latency long
    print(
        f"(a) {n} concurrent sessions x {calls} model calls, {latency:.1f}s injected latency each"
    )
    print(f"    terminations {ends}; ideal {ideal_rate:.1f} sessions/s")
    print(
        f"    sustained ({waves * n} sessions through {n} slots): "
        f"{waves * n / sus_wall:.1f} sessions/s, ratio {waves * n / sus_wall / ideal_rate:.3f} "
        "(target >= 0.9)"
    )
    print(
        f"    burst ({n} sessions all started at t=0, startup and tail included): "
        f"{n / burst_wall:.1f} sessions/s, ratio {n / burst_wall / ideal_rate:.3f}"
    )
    image = len(env.image)
    per = (peak - base) / n  # from the burst: the first run after warm-up, on a clean base
    print(
        f"(d) peak RSS {peak / 2**20:.0f} MiB over a base of {base / 2**20:.0f} MiB with {n} "
        f"sessions live: {per / 1024:.1f} KB per concurrent session; beyond its "
        f"{image / 1024:.0f} KB database image: {(per - image) / 1024:.1f} KB (target <= 50 KB)"
    )


async def ours(env: Environment, tasks: list[Task], concurrency: int, fork_dir: Path | None) -> int:
    """Runs the sessions with our loop; returns the number of agent steps."""
    steps = 0

    async def job(i: int) -> None:
        nonlocal steps
        task = tasks[i]
        traj = await Session(
            task, env, GoldAgent(task, kinds(env)), ScriptedUser(task), fork_dir=fork_dir
        ).run()
        steps += traj.steps

    await bounded(len(tasks), concurrency, job)
    return steps


async def theirs(env: Environment, tasks: list[Task], concurrency: int) -> int:
    """The same agent side through pydantic-ai's Agent.run over our toolset."""
    steps = 0

    async def job(i: int) -> None:
        nonlocal steps
        task = tasks[i]
        async with env.fork() as state:
            agent = Agent(
                GoldAgent(task, kinds(env)),
                toolsets=[EnvironmentToolset(state)],
                system_prompt=env.domain.policy,
            )
            result = await agent.run(task.intent)
            steps += result.usage.requests

    await bounded(len(tasks), concurrency, job)
    return steps


async def timed(fn: Callable[[], Awaitable[int]]) -> tuple[int, float, float]:
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    steps = await fn()
    return steps, time.process_time() - cpu0, time.perf_counter() - wall0


async def part_b_and_c(env: Environment, n: int, repeats: int) -> None:
    """Alternates the contenders `repeats` times and keeps each one's best (least noisy) run."""
    tasks = make_tasks(n)
    saved = gc.get_threshold()
    gc.set_threshold(50_000, 20, 20)  # as the scheduler does
    best: dict[str, tuple[float, float, int]] = {}  # name -> (cpu per step, wall, steps)
    try:
        await ours(env, tasks[:50], 50, None)  # warm-up
        with tempfile.TemporaryDirectory() as tmp:
            contenders: dict[str, Callable[[], Awaitable[int]]] = {
                "ours": lambda: ours(env, tasks, n, None),
                "agent_run": lambda: theirs(env, tasks, n),
                "aiosqlite": lambda: ours(env, tasks, n, Path(tmp)),
            }
            for _ in range(repeats):
                for name, fn in contenders.items():
                    steps, cpu, wall = await timed(fn)
                    if name not in best or cpu / steps < best[name][0]:
                        best[name] = (cpu / steps, wall, steps)
    finally:
        gc.set_threshold(*saved)
    ours_ms, ours_wall, steps = best["ours"][0] * 1e3, best["ours"][1], best["ours"][2]
    theirs_ms = best["agent_run"][0] * 1e3
    file_ms, file_wall = best["aiosqlite"][0] * 1e3, best["aiosqlite"][1]
    print(f"(b) zero latency, {n} sessions at once, {steps} agent steps, best of {repeats}")
    print(f"    our loop: {ours_ms:.3f} ms CPU per agent step (user turns included)")
    print(f"    pydantic-ai Agent.run, same agent and tools: {theirs_ms:.3f} ms CPU per agent step")
    print(f"    ratio Agent.run / ours: {theirs_ms / ours_ms:.1f}x (target >= 20x)")
    calls = steps - n  # one report step per session makes no tool call
    print(f"(c) same sessions, {calls} tool calls each way, best of {repeats}")
    print(
        f"    in memory on the loop thread: {calls / ours_wall:,.0f} tool calls/s, "
        f"{ours_ms:.3f} ms CPU per step"
    )
    print(
        f"    aiosqlite, a database file and thread per session: {calls / file_wall:,.0f} "
        f"tool calls/s, {file_ms:.3f} ms CPU per step"
    )
    print(f"    ratio in-memory / aiosqlite throughput: {file_wall / ours_wall:.1f}x")


async def main(sessions: int, latency: float, cpu_sessions: int, repeats: int, loop: str) -> None:
    env = await Environment.build(bookstore())
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, event loop: {loop}")
    await part_a_and_d(env, sessions, latency)
    await part_b_and_c(env, cpu_sessions, repeats)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--cpu-sessions", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop")
    args = parser.parse_args()
    anyio.run(
        main,
        args.sessions,
        args.latency,
        args.cpu_sessions,
        args.repeats,
        args.loop,
        backend_options={"use_uvloop": args.loop == "uvloop"},
    )
