"""The filter funnel on real trajectories: offline sessions with injected mistakes."""

from __future__ import annotations

import pytest

from agentscaler.pipeline.filter import FilterConfig, filter_trajectories, judge, repetition
from agentscaler.runtime import (
    Environment,
    ErrorInjection,
    GoldAgent,
    GoldCall,
    ScriptedUser,
    Session,
    Task,
    Trajectory,
    with_gold_state,
)

pytestmark = pytest.mark.anyio


async def _run(env: Environment, task: Task, **mistakes: float) -> Trajectory:
    kinds = {name: t.kind for name, t in env.tools.items()}
    agent = GoldAgent(task, kinds, ErrorInjection(**mistakes))
    return await Session(task, env, agent, ScriptedUser(task)).run()


async def test_each_stage_rejects_what_it_should(env: Environment, tasks: list[Task]) -> None:
    """Clean and recovered sessions pass; an extra read fails exact match, a wrong write the state
    check; broken conversations fail validity; the funnel counts every stage by domain."""
    task = next(t for t in tasks if any(c.name.startswith("place") for c in t.gold_calls))
    tools = {env.name: set(env.tools)}
    clean = await _run(env, task)
    recovered = await _run(env, task, bad_argument=1.0)
    extra = await _run(env, task, extra_read=1.0)
    wrong = await _run(env, task, wrong_write=1.0)
    broken = clean.model_copy(deep=True)
    broken.messages[2]["tool_calls"][0]["function"]["name"] = "launch_rocket"  # type: ignore[index]
    report = filter_trajectories([clean, recovered, extra, wrong, broken], {task.id: task}, tools)
    by = [(v.accepted, v.stage, v.recovered) for v in report.verdicts]
    assert by == [
        (True, None, False),
        (True, None, True),
        (False, "exact_match", False),
        (False, "state", False),
        (False, "validity", False),
    ]
    assert "'launch_rocket' is not a tool" in str(report.verdicts[4].reason)
    assert report.funnel[env.name] == {"validity": (5, 4), "state": (4, 3), "exact_match": (3, 2)}
    lenient = FilterConfig(stages=("validity", "state"))
    assert judge(extra, task, tools[env.name], lenient).accepted


async def test_degenerate_repetition_is_rejected(env: Environment, tasks: list[Task]) -> None:
    task = tasks[0]
    looping = (await _run(env, task)).model_copy(deep=True)
    last = max(i for i, m in enumerate(looping.messages) if m["role"] == "assistant")
    looping.messages[last]["content"] = "I will check that for you now. " * 40
    verdict = judge(looping, task, set(env.tools), FilterConfig())
    assert verdict.stage == "validity" and "repeats itself" in str(verdict.reason)
    assert repetition(["a b c d e f"], 2) == 0.0
    assert repetition(["a b a b a b"], 2) == pytest.approx(1 - 2 / 5)


async def test_a_gold_call_that_fails_on_replay_is_not_expected(
    env: Environment, tasks: list[Task]
) -> None:
    """A task whose gold holds a call that fails (a benchmark's task defect): its gold state
    records the failure, and a session that makes the same calls passes exact match."""
    task = next(t for t in tasks if any(c.name == "cancel_order" for c in t.gold_calls))
    defect = GoldCall(name="get_order", arguments={"order_id": 999})  # no such order
    flawed = task.model_copy(update={"gold_calls": (defect, *task.gold_calls)})
    flawed = await with_gold_state(flawed, env)
    assert flawed.gold_failures == (0,) and flawed.gold_hash == task.gold_hash
    faithful = await _run(env, flawed)
    assert faithful.tool_calls[0]["error"] is not None
    assert judge(faithful, flawed, set(env.tools), FilterConfig()).accepted
