"""τ²-bench's telecom domain: lossless data, both toolkits' schemas and texts, the sync, and all
94 gold replays (train and small) reproduced record for record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from agentscaler.domains.telecom import agent_dump, policy, telecom, telecom_user, user_dump
from agentscaler.domains.telecom.calls import upstream_tools
from agentscaler.domains.telecom.replay import (
    replay_record,
    respond,
    set_state,
    task_of,
    tau2_reward,
    tau2_task,
)
from agentscaler.runtime import Environment, ErrorInjection, GoldAgent, ScriptedUser, Session

pytestmark = pytest.mark.anyio
DERIVED = Path(__file__).parent / "data" / "derived"
REPLAYS = [DERIVED / f"tau2-telecom_gold_replay_{split}.jsonl" for split in ("train", "small")]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def envs() -> tuple[Environment, Environment]:
    return await Environment.build(telecom()), await Environment.build(telecom_user())


def _records() -> list[dict[str, Any]]:
    return [orjson.loads(line) for path in REPLAYS for line in path.read_bytes().splitlines()]


def _record(task_id: str) -> dict[str, Any]:
    return next(r for r in _records() if r["task_id"] == task_id)


async def test_export_gives_back_what_tau2_loads(envs: tuple[Environment, Environment]) -> None:
    """The fresh databases dump as τ² dumps its TOML-loaded models, declaration order kept:
    compared with a task whose initialization only set the user's name and data saver."""
    agent_env, user_env = envs
    async with agent_env.fork() as agent, user_env.fork() as user:
        agent_db, user_db = await agent_dump(agent), await user_dump(user)
    recorded = _record("[mobile_data_issue]data_saver_mode_on[PERSONA:Easy]")["initial"]
    assert json.loads(json.dumps(agent_db, sort_keys=True)) == recorded["agent_db"]
    expected = recorded["user_db"]
    expected["device"]["data_saver_mode"] = False
    expected["surroundings"].update(name=None, phone_number=None, roaming_allowed=False)
    assert json.loads(json.dumps(user_db, sort_keys=True)) == expected
    assert list(agent_db) == ["plans", "customers", "lines", "bills", "devices"]
    assert list(agent_db["customers"][0])[4:8] == [
        "phone_number",
        "address",
        "account_status",
        "payment_methods",
    ]
    assert list(agent_db["bills"][0])[-2:] == ["line_items", "status"]
    assert list(user_db["device"])[9:11] == ["network_mode_preference", "active_apn_settings"]
    assert list(user_db["device"])[-3:] == ["vpn_connected", "vpn_details", "app_statuses"]
    assert list(user_db["surroundings"])[4] == "signal_strength"


async def test_tools_are_tau2s(envs: tuple[Environment, Environment]) -> None:
    """Both toolkits' schemas equal τ²'s, as the agent and the user see them."""
    for env, side in zip(envs, ("agent", "user"), strict=True):
        expected = [entry["schema"] for entry in upstream_tools(side)]
        assert [t.openai_schema() for t in env.tools.values()] == expected
        assert [t.kind == "write" for t in env.tools.values()] == [
            e["mutates_state"] for e in upstream_tools(side)
        ]
    assert envs[0].domain.policy == policy()
    assert policy().startswith("<main_policy>\n") and policy().endswith("</tech_support_policy>")


async def test_gold_replays_reproduce_every_record(envs: tuple[Environment, Environment]) -> None:
    """All 94 replays: initial databases, every observation and hash, the assertions, the final
    databases and τ²'s evaluator cross-check equal what τ²'s own code recorded."""
    records = _records()
    assert len(records) == 94
    for record in records:
        got = await replay_record(*envs, task_of(record), record["source_file"], record["splits"])
        assert got["initial"] == record["initial"], record["task_id"]
        assert got["actions"] == record["actions"], record["task_id"]
        assert got["final"] == record["final"], record["task_id"]
        assert got["env_assertions"] == record["env_assertions"], record["task_id"]
        line = json.dumps(got, sort_keys=True, ensure_ascii=False)  # the replay files' format
        assert line == json.dumps(record, sort_keys=True, ensure_ascii=False), record["task_id"]


async def test_bad_calls_read_as_in_tau2(envs: tuple[Environment, Environment]) -> None:
    """τ² calls its toolkits' methods unvalidated: Python's TypeError texts, its own errors."""
    agent_env, user_env = envs
    refuel = {"customer_id": "C1001", "line_id": "L1002"}
    agent_cases = {
        ("refuel_data", json.dumps(refuel)): (
            "Error: TelecomTools.refuel_data() missing 1 required positional argument: 'gb_amount'"
        ),
        ("refuel_data", "{}"): (
            "Error: TelecomTools.refuel_data() missing 3 required positional arguments: "
            "'customer_id', 'line_id', and 'gb_amount'"
        ),
        ("refuel_data", json.dumps({**refuel, "gb_amount": 1, "x": 1})): (
            "Error: TelecomTools.refuel_data() got an unexpected keyword argument 'x'"
        ),
        ("refuel_data", json.dumps({**refuel, "gb_amount": "2"})): (
            "Error: '<=' not supported between instances of 'str' and 'int'"
        ),
        ("refuel_data", json.dumps({**refuel, "gb_amount": 0})): (
            "Error: Refuel amount must be positive"
        ),
        ("resume_line", json.dumps(refuel)): "Error: Line must be suspended to resume",
        ("suspend_line", json.dumps({**refuel, "line_id": "L1004", "reason": "x"})): (
            "Error: Line L1004 not found for customer C1001"
        ),
        ("get_details_by_id", '{"id": "X1"}'): "Error: Unknown ID format or type: X1",
        ("get_customer_by_id", '{"customer_id": "C9"}'): "Error: Customer with ID C9 not found",
        ("break_vpn", "{}"): "Error: Tool 'break_vpn' not found.",
    }
    async with agent_env.fork() as agent, user_env.fork() as user:
        await set_state(agent, user, _records()[0]["initialization_actions"])
        before = await agent.state_hash(), await user.state_hash()
        for (name, arguments), expected in agent_cases.items():
            got = await respond(agent, user, "assistant", name, orjson.loads(arguments))
            assert got == {"content": expected, "error": True}, name
        got = await respond(agent, user, "user", "check_status_bar", {"a": 1})
        assert got["content"] == (
            "Error: TelecomUserTools.check_status_bar() got an unexpected keyword argument 'a'"
        )
        got = await respond(
            agent, user, "user", "grant_app_permission", {"app_name": "x", "permission": "sms"}
        )
        assert got == {
            "content": "Error. App 'x' not found. Cannot grant permission.\nStatus Bar: "
            "📶⁴ Excellent | 5G | 📵 Data Disabled | 🔋 80%",
            "error": False,
        }
        assert (await agent.state_hash(), await user.state_hash()) == before
        usage = await respond(agent, user, "assistant", "get_data_usage", refuel)
        assert usage["content"] == (
            '{"line_id": "L1002", "data_used_gb": "15.1", "data_limit_gb": "15.0", '
            '"data_refueling_gb": "0.0", "cycle_end_date": "2025-02-28"}'
        )


async def test_telecom_tasks_run_through_sessions(envs: tuple[Environment, Environment]) -> None:
    """τ² tasks as runtime Tasks: sessions apply the initialization, run the gold calls of both
    sides (offline policies), then the env assertions, and τ²'s reward follows from the
    trajectory. The scripted user makes its calls before the conversation, so tasks whose gold
    order has a user action after an agent action are not expected to pass."""
    agent_env, user_env = envs
    kinds = {name: t.kind for name, t in agent_env.tools.items()}
    rewarded = 0
    for record in [r for r in _records() if "small" in r["source_file"]]:
        raw = task_of(record)
        task = tau2_task(raw, "small")
        assert len(task.initialization) == len(record["initialization_actions"])
        agent = GoldAgent(task, kinds, ErrorInjection())
        traj = await Session(task, agent_env, agent, ScriptedUser(task), user_env=user_env).run()
        assert [a["name"] for a in traj.assertions] == [a.name for a in task.assertions]
        sides = [c.requestor for c in task.gold_calls]
        interleaved = "user" in sides[sides.index("agent") :] if "agent" in sides else False
        reward = tau2_reward(task, traj, raw["evaluation_criteria"]["reward_basis"])
        if not interleaved:
            assert reward == 1.0, task.id
        rewarded += reward == 1.0
    assert rewarded >= 15
