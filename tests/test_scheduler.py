"""The scheduler bounds concurrency, streams and resumes, cancels cleanly, reports events."""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models import Model
from pydantic_ai.models.function import AgentInfo, FunctionModel

from agentscaler.runtime import (
    ClosedError,
    Environment,
    Event,
    EventBus,
    GoldAgent,
    ModelCalled,
    RunProgress,
    Scheduler,
    SchedulerConfig,
    SessionFailed,
    SessionFinished,
    SessionLimits,
    SessionStarted,
    Task,
    ToolCalled,
    TrajectorySink,
    UserError,
    gold_agent,
    scripted_user,
)
from agentscaler.runtime.events import EVENT_ADAPTER

pytestmark = pytest.mark.anyio
WORKER = Path(__file__).parent / "scripts" / "resume_worker.py"


def read_keys(path: Path) -> list[tuple[str, int]]:
    return [(r["task_id"], r["trial"]) for r in map(json.loads, path.read_text().splitlines())]


def slow_gold(latency: float, in_flight: dict[str, int] | None = None) -> Any:
    """A gold agent with model latency that tracks how many requests run at once."""

    def make(task: Task, trial: int, env: Environment) -> Model:
        inner = GoldAgent(task, {n: t.kind for n, t in env.tools.items()})

        async def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            if in_flight is not None:
                in_flight["now"] += 1
                in_flight["max"] = max(in_flight["max"], in_flight["now"])
            try:
                await anyio.sleep(latency)
                return await inner.request(messages, None, info.model_request_parameters)
            finally:
                if in_flight is not None:
                    in_flight["now"] -= 1

        return FunctionModel(reply)

    return make


async def test_run_streams_every_trial_and_resumes_without_redoing(
    env: Environment, tasks: list[Task], tmp_path: Path
) -> None:
    """Every (task, trial) is written once; a second run over the same directory skips them."""
    config = SchedulerConfig(trials=3, concurrency=4)
    async with Scheduler(
        env, agent=gold_agent(), user=scripted_user(), run_dir=tmp_path, config=config
    ) as scheduler:
        first = await scheduler.run(tasks)
    assert (first.scheduled, first.written, first.skipped) == (24, 24, 0)
    assert first.by_termination == {"user_stop": 24}
    async with Scheduler(
        env, agent=gold_agent(), user=scripted_user(), run_dir=tmp_path, config=config
    ) as scheduler:
        second = await scheduler.run(tasks)
    assert (second.written, second.skipped) == (0, 24)
    keys = read_keys(tmp_path / "trajectories" / "trajectories.jsonl")
    assert sorted(keys) == sorted((t.id, i) for t in tasks for i in range(3))


async def test_concurrency_limit_and_events(
    env: Environment, tasks: list[Task], tmp_path: Path
) -> None:
    """At most `concurrency` sessions run at once; subscribers and events.jsonl see each one,
    and the live counters add up to what the sessions did."""
    in_flight = {"now": 0, "max": 0}
    seen: list[Event] = []
    config = SchedulerConfig(trials=2, concurrency=3, progress_interval_s=0.02)
    async with Scheduler(
        env,
        agent=slow_gold(0.01, in_flight),
        user=scripted_user(),
        run_dir=tmp_path,
        config=config,
    ) as scheduler:
        scheduler.events.subscribe(seen.append)
        summary = await scheduler.run(tasks)
    assert summary.written == 16
    assert in_flight["max"] == 3
    assert sum(isinstance(e, SessionStarted) for e in seen) == 16
    assert sum(isinstance(e, SessionFinished) for e in seen) == 16
    logged = [
        EVENT_ADAPTER.validate_json(line)
        for line in (tmp_path / "events.jsonl").read_bytes().splitlines()
    ]
    assert [e.type for e in logged] == [e.type for e in seen]
    assert {e.type for e in logged} == {
        "session_started",
        "model_called",
        "tool_called",
        "session_finished",
        "run_progress",
    }
    progress = [e for e in seen if isinstance(e, RunProgress)]
    assert len(progress) >= 2  # on the interval during the run, and once at the end
    assert all(p.running <= 3 for p in progress)
    last = progress[-1]
    assert (last.queued, last.running, last.done, last.failed) == (0, 0, 16, 0)
    assert last.tool_calls == sum(isinstance(e, ToolCalled) for e in seen)
    assert last.model_calls == sum(isinstance(e, ModelCalled) for e in seen)
    # the agent's requests sleep 10 ms: the intervals' p99 sees them
    assert max(p.latency_ms["p99"] for p in progress) >= 10


async def test_per_session_timeout(env: Environment, tasks: list[Task], tmp_path: Path) -> None:
    """Sessions over their time limit end as TIMEOUT trajectories; the run goes on."""
    config = SchedulerConfig(concurrency=8, limits=SessionLimits(timeout_s=0.05))
    async with Scheduler(
        env, agent=slow_gold(0.03), user=scripted_user(), run_dir=tmp_path, config=config
    ) as scheduler:
        summary = await scheduler.run(tasks)
    assert summary.by_termination == {"timeout": 8}


async def test_crashing_session_is_reported_not_written(
    env: Environment, tasks: list[Task], tmp_path: Path
) -> None:
    """A session that crashes (here: its model factory) is counted and reported; others finish."""

    def agent(task: Task, trial: int, env: Environment) -> Model:
        if task.id == "bookstore-2":
            raise RuntimeError("adapter bug")
        return gold_agent()(task, trial, env)

    seen: list[Event] = []
    async with Scheduler(env, agent=agent, user=scripted_user(), run_dir=tmp_path) as scheduler:
        scheduler.events.subscribe(seen.append)
        summary = await scheduler.run(tasks)
    assert (summary.written, summary.failed) == (7, 1)
    failed = [e for e in seen if isinstance(e, SessionFailed)]
    assert [(e.task_id, e.error) for e in failed] == [("bookstore-2", "RuntimeError: adapter bug")]


async def test_cancellation_writes_no_partial_output(
    env: Environment, tasks: list[Task], tmp_path: Path
) -> None:
    """Cancelling a run mid-way leaves only whole trajectories; resuming completes the set."""
    config = SchedulerConfig(trials=10, concurrency=8)
    async with Scheduler(
        env, agent=slow_gold(0.005), user=scripted_user(), run_dir=tmp_path, config=config
    ) as scheduler:
        with anyio.CancelScope() as scope:

            def cancel_after_20(event: Event) -> None:
                if isinstance(event, SessionFinished) and scheduler.sink.written == 20:
                    scope.cancel()

            scheduler.events.subscribe(cancel_after_20)
            await scheduler.run(tasks)
    path = tmp_path / "trajectories" / "trajectories.jsonl"
    partial = read_keys(path)  # every line parses
    assert len(partial) == 20
    assert path.read_bytes().endswith(b"\n")
    async with Scheduler(
        env, agent=slow_gold(0.0), user=scripted_user(), run_dir=tmp_path, config=config
    ) as scheduler:
        rest = await scheduler.run(tasks)
    assert rest.written == 80 - len(partial)
    keys = read_keys(path)
    assert len(keys) == len(set(keys)) == 80


async def test_lifecycle_misuse_fails_loudly(
    env: Environment, tasks: list[Task], tmp_path: Path
) -> None:
    """run() outside `async with`, re-entering, unknown domains: clear errors."""
    scheduler = Scheduler(env, agent=gold_agent(), user=scripted_user(), run_dir=tmp_path)
    with pytest.raises(ClosedError):
        await scheduler.run(tasks)
    async with scheduler:
        with pytest.raises(UserError, match="unknown domain 'nowhere'"):
            await scheduler.run([tasks[0].model_copy(update={"domain": "nowhere"})])
    with pytest.raises(ClosedError):
        await scheduler.run(tasks)
    with pytest.raises(ClosedError):
        async with scheduler:
            pass


async def test_gc_threshold_is_restored(
    env: Environment, tasks: list[Task], tmp_path: Path
) -> None:
    """The GC setting applies during run() only."""
    before = gc.get_threshold()
    async with Scheduler(env, agent=gold_agent(), user=scripted_user(), run_dir=tmp_path) as s:
        await s.run(tasks)
    assert gc.get_threshold() == before


async def test_sink_drops_a_torn_last_line(tmp_path: Path) -> None:
    """A torn last line (a write cut by SIGKILL) is cut off on open; complete ones are kept."""
    path = tmp_path / "t.jsonl"
    whole = {"task_id": "a", "trial": 0}
    path.write_text(json.dumps(whole) + "\n" + '{"task_id": "b", "tri')
    async with TrajectorySink(path) as sink:
        assert sink.done == {("a", 0)}
    assert path.read_text() == json.dumps(whole) + "\n"


def run_worker(run_dir: Path, trials: int, latency: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(run_dir), str(trials), str(latency)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def final_hashes(path: Path) -> dict[tuple[str, int], str]:
    rows = map(json.loads, path.read_text().splitlines())
    return {(r["task_id"], r["trial"]): r["final_hash"] for r in rows}


def test_sigkill_then_resume_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """A run SIGKILLed mid-flight, then resumed, ends with exactly the trajectories of an
    uninterrupted run (same keys, same final states): 0 lost, 0 duplicated."""
    trials = 25  # 8 tasks x 25 = 200 sessions
    reference = run_worker(tmp_path / "reference", trials, 0.0)
    assert reference.wait(timeout=120) == 0, reference.stderr.read() if reference.stderr else ""

    killed_dir = tmp_path / "killed"
    path = killed_dir / "trajectories" / "trajectories.jsonl"
    for kill_at in (20, 90):  # kill twice, at different depths
        proc = run_worker(killed_dir, trials, 0.01)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if path.exists() and path.read_bytes().count(b"\n") >= kill_at:
                break
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
    count_before = path.read_bytes().count(b"\n")
    assert 90 <= count_before < 200
    resumed = run_worker(killed_dir, trials, 0.0)
    assert resumed.wait(timeout=120) == 0
    out = json.loads(resumed.stdout.read() if resumed.stdout else b"{}")
    assert out["skipped"] == count_before
    assert out["written"] == 200 - count_before

    keys = read_keys(path)
    assert len(keys) == len(set(keys)) == 200  # duplicated = 0
    expected = final_hashes(tmp_path / "reference" / "trajectories" / "trajectories.jsonl")
    assert final_hashes(path) == expected  # lost = 0, and each one is the same session


async def test_file_forks_match_memory_forks(
    env: Environment, tasks: list[Task], tmp_path: Path
) -> None:
    """With file-backed forks (aiosqlite) a run reaches the same final states as in memory,
    and leaves no database files behind."""
    hashes = {}
    for mode in (False, True):
        config = SchedulerConfig(trials=2, concurrency=4, file_forks=mode)
        run_dir = tmp_path / str(mode)
        async with Scheduler(
            env, agent=gold_agent(), user=scripted_user(), run_dir=run_dir, config=config
        ) as scheduler:
            assert (await scheduler.run(tasks)).written == 16
        hashes[mode] = final_hashes(run_dir / "trajectories" / "trajectories.jsonl")
    assert hashes[True] == hashes[False]
    assert {h for h in hashes[True].values()} >= {t.gold_hash for t in tasks}
    assert list((tmp_path / "True" / "forks").iterdir()) == []


async def test_event_stream_delivers_and_drops_when_full() -> None:
    """An async consumer gets events in order; past its buffer, events are dropped and counted
    instead of blocking the emitter."""
    bus = EventBus()
    async with bus.stream(max_buffer=3) as events:
        for i in range(5):
            bus.emit(SessionStarted(task_id=f"t{i}", trial=0, domain="d"))
        received = [await events.receive() for _ in range(3)]
    assert [e.task_id for e in received] == ["t0", "t1", "t2"]
    assert bus.dropped == 2
    bus.emit(SessionStarted(task_id="after", trial=0, domain="d"))  # unsubscribed: no error
