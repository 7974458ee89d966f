"""τ²-bench telecom tasks replayed the way τ² runs them, as its gold replay records.

`run_function` is τ²'s `run_env_function_call` (initialization actions and env assertions: any
function of either toolkit, then a sync); `respond` its live `get_response` (a tool call, then a
sync when it succeeded). `replay_record` replays a τ² task's gold actions and produces the
record of `tau2-telecom_gold_replay_*.jsonl`, the evaluator's cross-check included.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from agentscaler.domains.tau.collections import Record
from agentscaler.domains.tau.reward import outputs_communicated
from agentscaler.runtime import (
    EnvAssertion,
    EnvCall,
    Environment,
    Fork,
    GoldCall,
    Task,
    Trajectory,
    UserError,
)

from . import agent_dump, sync, tau2_hash, telecom, telecom_user, tools, user_dump, user_tools

TAU2_COMMIT = "a2c024725189473d2d7cea3a5cfdbcc67478e41f"


async def run_function(
    agent: Fork, user: Fork, env_type: str, func_name: str, arguments: dict[str, Any]
) -> Any:
    """`func_name(**arguments)` on the user's or the agent's toolkit, then a sync."""
    fork, functions = (
        (user, user_tools.FUNCTIONS) if env_type == "user" else (agent, tools.FUNCTIONS)
    )
    async with fork.database() as db:
        result = await functions[func_name](db, **arguments)
    await sync(agent, user)
    return result


async def set_state(agent: Fork, user: Fork, initialization_actions: list[Record]) -> None:
    for action in initialization_actions:
        await run_function(
            agent, user, action["env_type"], action["func_name"], action["arguments"]
        )
    await sync(agent, user)


async def respond(agent: Fork, user: Fork, requestor: str, name: str, arguments: Any) -> Record:
    """One tool call as τ²'s ToolMessage: {content, error}."""
    obs = await (user if requestor == "user" else agent).call(name, arguments)
    content, error = obs.content, not obs.ok
    if obs.ok:
        try:
            await sync(agent, user)
        except Exception as exc:  # τ² reports a failed sync as the call's error
            content, error = f"Error: {exc}", True
    return {"content": content, "error": error}


async def hashes(agent: Fork, user: Fork) -> dict[str, str]:
    return {
        "agent_db_hash": tau2_hash(await agent_dump(agent)),
        "user_db_hash": tau2_hash(await user_dump(user)),
    }


async def snapshot(agent: Fork, user: Fork) -> Record:
    """Both databases as τ²'s hash preimage (sorted keys) and their hashes."""
    agent_db, user_db = await agent_dump(agent), await user_dump(user)
    return {
        "agent_db": json.loads(json.dumps(agent_db, sort_keys=True)),
        "user_db": json.loads(json.dumps(user_db, sort_keys=True)),
        "agent_db_hash": tau2_hash(agent_db),
        "user_db_hash": tau2_hash(user_db),
    }


def _matched(gold: Record, calls: list[Record]) -> bool:
    """τ²'s action check: a call of the same name whose own argument keys agree with gold's."""
    for call in calls:
        if call["name"] != gold["name"]:
            continue
        keys = call["arguments"] if gold["compare_args"] is None else gold["compare_args"]
        if all(call["arguments"].get(k) == gold["arguments"].get(k) for k in keys):
            return True
    return False


async def _gold_env(
    agent_env: Environment, user_env: Environment, task: Record
) -> tuple[dict[str, str], list[str]]:
    """τ²'s evaluator's gold environment: the gold actions without sync."""
    async with agent_env.fork() as agent, user_env.fork() as user:
        await set_state(agent, user, task["initial_state"]["initialization_actions"])
        errors = []
        for action in task["evaluation_criteria"]["actions"]:
            fork = user if action["requestor"] == "user" else agent
            obs = await fork.call(action["name"], action["arguments"])
            if not obs.ok:
                errors.append(obs.content)
        return await hashes(agent, user), errors


async def replay_record(
    agent_env: Environment, user_env: Environment, task: Record, source_file: str, splits: list[str]
) -> Record:
    """Replay a τ² task's gold actions: its record in `tau2-telecom_gold_replay_*.jsonl`."""
    criteria = task["evaluation_criteria"]
    init = task["initial_state"]
    async with agent_env.fork() as agent, user_env.fork() as user:
        await set_state(agent, user, init["initialization_actions"])
        initial = await snapshot(agent, user)
        actions = []
        for index, action in enumerate(criteria["actions"]):
            tool = (user_env if action["requestor"] == "user" else agent_env).tools[action["name"]]
            observation = await respond(
                agent, user, action["requestor"], action["name"], action["arguments"]
            )
            actions.append(
                {
                    "index": index,
                    "action_id": action["action_id"],
                    "requestor": action["requestor"],
                    "name": action["name"],
                    "arguments": action["arguments"],
                    "compare_args": action["compare_args"],
                    "mutates_state": tool.kind == "write",
                    "observation": observation,
                    "hashes_after": await hashes(agent, user),
                }
            )
        final = await snapshot(agent, user)
        assertions = []
        for a in criteria["env_assertions"]:
            result = await run_function(agent, user, a["env_type"], a["func_name"], a["arguments"])
            if not isinstance(result, bool):
                raise TypeError(
                    f"Function {a['func_name']} returned {type(result)} instead of bool"
                )
            assertions.append(
                {
                    "env_type": a["env_type"],
                    "func_name": a["func_name"],
                    "arguments": a["arguments"],
                    "assert_value": a["assert_value"],
                    "result": result,
                    "passed": result == a["assert_value"],
                }
            )
        after = await hashes(agent, user)
    final_hashes = {k: final[k] for k in ("agent_db_hash", "user_db_hash")}
    gold, gold_errors = await _gold_env(agent_env, user_env, task)
    met = [a["passed"] for a in assertions]
    basis = criteria["reward_basis"]
    env_reward = (1.0 if all(met) else 0.0) if "ENV_ASSERTION" in basis else 1.0
    if "DB" in basis:
        env_reward *= 1.0 if gold == final_hashes else 0.0
    action_reward = 1.0 if all(_matched(g, actions) for g in criteria["actions"]) else 0.0
    return {
        "task_id": task["id"],
        "source_file": source_file,
        "tau2_commit": TAU2_COMMIT,
        "reward_basis": basis,
        "splits": splits,
        "initialization_data": init["initialization_data"],
        "initialization_actions": init["initialization_actions"],
        "initial": initial,
        "final": final,
        "actions": actions,
        "env_assertions": assertions,
        "all_env_assertions_passed": all(met),
        "hashes_after_assertions": after,
        "assertions_changed_state": after != final_hashes,
        "tau2_evaluator_check": {
            "env_reward": env_reward,
            "action_reward": action_reward,
            "reward_env_x_action_if_in_basis": env_reward
            * (action_reward if "ACTION" in basis else 1.0),
            "env_assertions_met": met,
            "db_match": gold == final_hashes,
            "evaluator_gold_env_agent_db_hash": gold["agent_db_hash"],
            "evaluator_gold_env_user_db_hash": gold["user_db_hash"],
            "evaluator_gold_env_errors": gold_errors,
            "gold_env_matches_replay_final": gold == final_hashes,
        },
    }


def load_tau2_tasks(path: Path) -> list[Record]:
    """τ²-bench tasks from a JSON list (its tasks.json) or JSON lines; a bad file says where."""
    data = path.read_bytes()
    try:
        loaded = orjson.loads(data)
        tasks = loaded if isinstance(loaded, list) else [loaded]
    except orjson.JSONDecodeError:
        tasks = []
        for no, line in enumerate(data.splitlines(), 1):
            try:
                tasks.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise UserError(f"{path}, line {no}: {exc}") from exc
    for i, task in enumerate(tasks):
        missing = {"id", "initial_state", "evaluation_criteria"} - set(task)
        if missing:
            raise UserError(f"{path}, task {i}: missing {sorted(missing)}")
    return tasks


async def replay_file(path: Path, split: str, advance: Callable[[], None]) -> list[Record]:
    """Every task of a τ² telecom task file replayed, as its gold replay records."""
    tasks = load_tau2_tasks(path)
    agent_env = await Environment.build(telecom())
    user_env = await Environment.build(telecom_user())
    out = []
    for task in tasks:
        out.append(await replay_record(agent_env, user_env, task, path.name, [split]))
        advance()
    return out


def task_of(record: Record) -> Record:
    """The τ² task a replay record was made from (its inputs): replay files carry their tasks."""
    return {
        "id": record["task_id"],
        "initial_state": {
            "initialization_data": record["initialization_data"],
            "initialization_actions": record["initialization_actions"],
        },
        "evaluation_criteria": {
            "actions": [
                {k: a[k] for k in ("action_id", "requestor", "name", "arguments", "compare_args")}
                for a in record["actions"]
            ],
            "env_assertions": [
                {k: a[k] for k in ("env_type", "func_name", "arguments", "assert_value")}
                for a in record["env_assertions"]
            ],
            "reward_basis": record["reward_basis"],
        },
    }


def _side(env_type: str) -> str:
    return "user" if env_type == "user" else "agent"  # τ² calls the agent's side "assistant"


def tau2_task(raw: Record, split: str | None = None) -> Task:
    """A τ² telecom task as a runtime `Task`: its user scenario as the intent, its gold actions
    (either side), its initialization actions and env assertions, the facts the agent must
    communicate as gold outputs."""
    criteria, init = raw["evaluation_criteria"], raw["initial_state"]
    scenario = (raw.get("user_scenario") or {}).get("instructions")
    return Task(
        id=f"telecom/{raw['id']}",
        domain="telecom",
        intent=json.dumps(scenario) if scenario else raw["id"],
        gold_calls=tuple(
            GoldCall(name=a["name"], arguments=a["arguments"], requestor=_side(a["requestor"]))
            for a in criteria["actions"]
        ),
        gold_outputs=tuple(criteria.get("communicate_info") or ()),
        initialization=tuple(
            EnvCall(side=_side(a["env_type"]), name=a["func_name"], arguments=a["arguments"])
            for a in init["initialization_actions"]
        ),
        assertions=tuple(
            EnvAssertion(
                side=_side(a["env_type"]),
                name=a["func_name"],
                arguments=a["arguments"],
                expected=a["assert_value"],
            )
            for a in criteria["env_assertions"]
        ),
        split=split,
    )


def tau2_reward(task: Task, trajectory: Trajectory, basis: Sequence[str]) -> float:
    """τ²-bench's reward of a session on a telecom task, for the parts of its basis a trajectory
    holds: ENV_ASSERTION (every assertion run at the end passed), ACTION (each gold call made,
    with the same arguments, by a call that succeeded), COMMUNICATE (the task's facts said to
    the user). DB needs τ²'s gold environment: `replay_record` computes it from a task file."""
    reward = 1.0
    if "ENV_ASSERTION" in basis:
        reward *= float(all(a["passed"] for a in trajectory.assertions))
    if "ACTION" in basis:
        made = [
            (c["side"], c["name"], orjson.loads(c["arguments"] or "{}"))
            for c in trajectory.tool_calls
            if c["error"] is None
        ]
        reward *= float(all((g.requestor, g.name, g.arguments) in made for g in task.gold_calls))
    if "COMMUNICATE" in basis:
        reward *= float(outputs_communicated(task.gold_outputs, trajectory.messages))
    return reward
