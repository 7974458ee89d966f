"""Sessions drive a real OpenAI-compatible HTTP server (a fake on loopback)."""

from __future__ import annotations

from typing import Any

import pytest

from agentscaler.runtime import (
    Environment,
    RetryPolicy,
    ScriptedUser,
    Session,
    Task,
    TerminationReason,
    ToolErrorKind,
    load_balanced,
    openai_compatible,
)

pytestmark = pytest.mark.anyio


def tool_call(i: int, args: str) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": f"c{i}",
                "type": "function",
                "function": {"name": "get_order", "arguments": args},
            }
        ],
    }


async def test_session_over_http_with_rate_limit_and_malformed_arguments(
    env: Environment, tasks: list[Task], openai_server: Any
) -> None:
    """A 429 is retried, malformed tool-call JSON becomes a recorded error, and the agent's
    corrected call and final reply complete the session; the server saw our tool schemas."""
    calls = {"n": 0}

    def script(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        calls["n"] += 1
        if calls["n"] == 1:
            return 429, {}
        done = sum(m["role"] == "assistant" for m in body["messages"])
        replies = [
            tool_call(0, '{"order_id": 3'),
            tool_call(1, '{"order_id": 3}'),
            {"role": "assistant", "content": "Order 3 was cancelled."},
        ]
        return 200, replies[min(done, 2)]

    task = tasks[3]
    with openai_server(script) as (base_url, received):
        model = openai_compatible("fake-model", base_url)
        traj = await Session(
            task, env, model, ScriptedUser(task), retry=RetryPolicy(base_delay_s=0.01)
        ).run()
    assert traj.termination is TerminationReason.USER_STOP, traj.error
    assert [c["error"] for c in traj.tool_calls] == [ToolErrorKind.INVALID_JSON, None]
    assert traj.final_hash == task.gold_hash
    assert traj.agent_model == "openai:fake-model"
    assert traj.usage["agent"].input_tokens == 30
    tools = {t["function"]["name"] for t in received[-1]["tools"]}
    assert tools == set(env.tools)
    sent = received[-1]["messages"]
    assert sent[0] == {"role": "system", "content": env.domain.policy}
    assert sent[-1]["role"] == "tool" and sent[-1]["tool_call_id"] == "c1"


async def test_replicas_balance_sessions_and_fail_over(
    env: Environment, tasks: list[Task], openai_server: Any
) -> None:
    """Sessions alternate between two servers of one model and stay on theirs; when one
    answers HTTP 500, its session moves to the other at once and completes there."""

    def healthy(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if any(m["role"] == "tool" for m in body["messages"]):
            return 200, {"role": "assistant", "content": "Order 3 is cancelled."}
        return 200, tool_call(0, '{"order_id": 3}')

    def broken(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 500, {}

    retry = RetryPolicy(max_attempts=1)  # no backoff: failover alone must carry the session
    with openai_server(healthy) as (url_a, seen_a), openai_server(healthy) as (url_b, seen_b):
        factory = load_balanced([openai_compatible("m", url_a), openai_compatible("m", url_b)])
        for i, task in enumerate(tasks[:4]):
            before = (len(seen_a), len(seen_b))
            traj = await Session(
                task, env, factory(task, 0, env), ScriptedUser(task), retry=retry
            ).run()
            assert traj.termination is TerminationReason.USER_STOP, traj.error
            grew = (len(seen_a) - before[0], len(seen_b) - before[1])
            assert grew == ((2, 0) if i % 2 == 0 else (0, 2))
    with openai_server(broken) as (url_a, seen_a), openai_server(healthy) as (url_b, seen_b):
        factory = load_balanced([openai_compatible("m", url_a), openai_compatible("m", url_b)])
        task = tasks[0]
        traj = await Session(
            task, env, factory(task, 0, env), ScriptedUser(task), retry=retry
        ).run()
        assert traj.termination is TerminationReason.USER_STOP, traj.error
        assert (len(seen_a), len(seen_b)) == (1, 2)  # moved on the first failure, stayed
