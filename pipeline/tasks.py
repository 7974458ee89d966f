"""Task generation: directed walks over a domain's tool-dependency graph, executed as they go.

Each step's arguments are grounded in the database as the walk has left it (ids that exist,
the chosen row's own values for filters). A walk is kept when every call succeeds and, if it
writes, the final state differs from the initial one; read-only walks keep their gold outputs
(checked by exact match, not state). The intent is template text built from the tools'
descriptions and arguments. Everything is a function of the domain and the seed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any

import orjson
from pydantic import BaseModel, Field, model_validator

from agentscaler.domains.check import valid_arguments
from agentscaler.domains.compile import compile_domain
from agentscaler.domains.dependencies import consumes, dependency_graph
from agentscaler.domains.infer import id_entity
from agentscaler.domains.seed import pool
from agentscaler.domains.spec import DomainSpec, OperatorSpec
from agentscaler.pipeline.parallel import ordered_map, run_async
from agentscaler.runtime import Environment, Fork, GoldCall, Task


class TaskConfig(BaseModel):
    per_domain: int = Field(default=10, ge=1, description="tasks per domain")
    min_calls: int = Field(default=1, ge=1, description="gold calls per task, at least")
    max_calls: int = Field(default=4, ge=1, description="gold calls per task, at most")
    attempts: int = Field(default=60, ge=1, description="walks tried per domain")
    write_share: float = Field(
        default=0.7, ge=0, le=1, description="share of walks that start at a write tool"
    )
    seed: int = 0

    @model_validator(mode="after")
    def _calls_range(self) -> TaskConfig:
        if self.min_calls > self.max_calls:
            raise ValueError(f"min_calls {self.min_calls} exceeds max_calls {self.max_calls}")
        return self


def _sentence(text: str) -> str:
    first = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0].rstrip(".")
    return first[:1].lower() + first[1:] if first else "do this"


def intent(calls: list[tuple[OperatorSpec, dict[str, Any]]]) -> str:
    """What the user says: each call's purpose with the values they know."""
    steps = []
    for op, args in calls:
        known = ", ".join(
            f"{k} {v}" for k, v in sorted(args.items()) if not isinstance(v, list | dict)
        )
        steps.append(_sentence(op.description) + (f" (my {known})" if known else ""))
    if len(steps) == 1:
        return f"I need you to {steps[0]}."
    return "I need a few things. First, " + ". Then, ".join(steps) + "."


def _salient(content: str) -> list[str]:
    """A read's answer the agent must report: the first plain value of the result."""
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        return [content[:80]]
    if isinstance(value, list):
        return (
            [str(len(value))]
            if value and not isinstance(value[0], dict)
            else (_salient(orjson.dumps(value[0]).decode()) if value else ["0"])
        )
    if isinstance(value, dict):
        for k, v in value.items():
            if (
                not k.endswith("_id")
                and isinstance(v, str | int | float)
                and not isinstance(v, bool)
            ):
                return [str(v)]
    return [str(value)[:80]]


def _ids(op: OperatorSpec, args: dict[str, Any], content: str) -> dict[str, Any]:
    """The entity ids a call worked on: its key, and the id a create returned."""
    out = {op.table: args[op.key]} if op.key and op.key in args else {}
    if op.action == "insert":
        created = orjson.loads(content).get(f"{op.table}_id")
        if created is not None:
            out[op.table] = created
    return out


async def _rows(state: Fork, spec: DomainSpec, op: OperatorSpec) -> dict[str, list[dict[str, Any]]]:
    tables = {t.name for t in spec.tables} & ({op.table} | consumes(op))
    return {name: await state.rows(name) for name in sorted(tables)}


async def domain_tasks(spec: DomainSpec, env: Environment, config: TaskConfig) -> list[Task]:
    graph = dependency_graph(spec)
    rng = random.Random(f"{spec.name}/{config.seed}")
    tasks: list[Task] = []
    seen: set[bytes] = set()
    # The paper's tasks change state; most tools read. Start most walks at a write.
    writers = [i for i, op in enumerate(spec.tools) if op.kind == "write"]
    async with AsyncExitStack() as forks:  # one fork, replaced only after a walk that changed it
        state = await forks.enter_async_context(env.fork())
        for _ in range(config.attempts):
            if len(tasks) >= config.per_domain:
                break
            start_at_write = writers and rng.random() < config.write_share
            walk = [rng.choice(writers) if start_at_write else rng.randrange(len(spec.tools))]
            length = rng.randint(config.min_calls, config.max_calls)
            while len(walk) < length:
                nxt = sorted(graph.successor_indices(walk[-1]))
                if not nxt:
                    break
                walk.append(rng.choice(nxt))
            if await state.state_hash() != env.initial_hash:  # the last walk wrote: start afresh
                await forks.aclose()
                state = await forks.enter_async_context(env.fork())
            calls, outputs = await _execute(state, spec, walk, rng)
            final = await state.state_hash()
            if len(calls) < len(walk):
                continue
            writes = any(op.kind == "write" for op, _ in calls)
            if writes and final == env.initial_hash:
                continue
            key = orjson.dumps([(op.name, args) for op, args in calls], option=orjson.OPT_SORT_KEYS)
            if key in seen:
                continue
            seen.add(key)
            tasks.append(
                Task(
                    id=f"{spec.name}-{len(tasks):03d}",
                    domain=spec.name,
                    intent=intent(calls),
                    persona=rng.choice(pool("name")),
                    gold_calls=tuple(GoldCall(name=op.name, arguments=args) for op, args in calls),
                    gold_outputs=() if writes else tuple(_salient(outputs[-1])),
                    gold_hash=final,
                )
            )
    return tasks


async def _execute(
    state: Fork, spec: DomainSpec, walk: list[int], rng: random.Random
) -> tuple[list[tuple[OperatorSpec, dict[str, Any]]], list[str]]:
    """Run a walk's calls until one fails: the calls made (with their grounded arguments) and
    their observations."""
    calls: list[tuple[OperatorSpec, dict[str, Any]]] = []
    outputs: list[str] = []
    handed: dict[str, Any] = {}  # entity -> the id the walk last worked on
    for index in walk:
        op = spec.tools[index]
        args = valid_arguments(op, await _rows(state, spec, op), rng)
        for name in args:  # follow the walk: reuse the id the previous calls used
            entity = op.table if name == op.key else id_entity(name)
            if entity in handed and not (op.action == "insert" and name == op.key):
                args[name] = handed[entity]
        obs = await state.call(op.name, args)
        if not obs.ok:
            break
        calls.append((op, args))
        outputs.append(obs.content)
        handed.update(_ids(op, args, obs.content))
    return calls, outputs


def _spec_tasks(job: tuple[DomainSpec, TaskConfig]) -> list[Task]:
    async def run(spec: DomainSpec, config: TaskConfig) -> list[Task]:
        return await domain_tasks(spec, await Environment.build(compile_domain(spec)), config)

    return run_async(run, *job)


def generate_tasks(
    specs: Sequence[DomainSpec],
    config: TaskConfig,
    *,
    workers: int = 1,
    on_domain: Callable[[], None] | None = None,
) -> list[Task]:
    """Tasks for checked DomainSpecs (`pipeline tasks`), in spec order, in worker processes."""
    out: list[Task] = []
    for made in ordered_map(_spec_tasks, [(s, config) for s in specs], workers):
        out += made
        if on_domain is not None:
            on_domain()
    return out
