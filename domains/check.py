"""Check a compiled domain by execution: every tool, called with valid arguments grounded in
the seeded database, must succeed. Failing tools are reported and dropped."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from agentscaler.runtime import Environment

from .compile import compile_domain
from .infer import id_entity
from .spec import DomainSpec, OperatorSpec

_EXAMPLE: dict[str, Any] = {
    "string": "example",
    "integer": 1,
    "number": 1.0,
    "boolean": True,
    "array": [],
    "object": {},
}


class ToolFailure(BaseModel):
    """Why a tool failed the execution check: the error kind and the observation it returned."""

    kind: str
    observation: str


@dataclass(frozen=True)
class CheckResult:
    spec: DomainSpec  # without the failing tools
    failures: dict[str, ToolFailure]  # by tool name
    # Built from the unchecked spec: the same tables and seed, so the same states and hashes as
    # one built from `spec`; its extra tools are simply never called. Task generation reuses it.
    environment: Environment


def valid_arguments(
    op: OperatorSpec, rows: Mapping[str, Sequence[dict[str, Any]]], rng: random.Random | None = None
) -> dict[str, Any]:
    """Required arguments (and the row key) with values that exist in the database whose rows
    are given: the key of one of its rows, that row's own values for filters, existing ids for
    foreign keys. The first row without `rng`; a random one with it (task generation)."""
    props: dict[str, Any] = op.parameters.get("properties", {})
    wanted = set(op.parameters.get("required", [])) | ({op.key} if op.key else set())

    def pick(table_rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        if not table_rows:
            return {}
        return rng.choice(list(table_rows)) if rng is not None else table_rows[0]

    row = pick(rows.get(op.table) or [])
    args: dict[str, Any] = {}
    for name in sorted(wanted):
        schema = props.get(name) if isinstance(props.get(name), dict) else {}
        kind = schema.get("type") if isinstance(schema.get("type"), str) else None
        column = op.columns.get(name)
        entity = id_entity(name)
        if op.action == "insert" and name == op.key:
            args[name] = 10_000 if isinstance(row.get(column or ""), int) else f"{op.table}_new"
        elif (
            column in row and (name == op.key or op.action == "select") and _fits(row[column], kind)
        ):
            args[name] = row[column]
        elif entity and rows.get(entity) and kind == "array":  # order_ids: a list of ids
            args[name] = [pick(rows[entity])[f"{entity}_id"]]
        elif entity and rows.get(entity) and _fits(key := pick(rows[entity])[f"{entity}_id"], kind):
            args[name] = key
        elif schema.get("enum"):
            args[name] = schema["enum"][0]
        else:
            args[name] = _EXAMPLE.get(kind or "", "example")
    return args


def _fits(value: Any, kind: str | None) -> bool:
    """Whether a stored value is valid for a parameter of this JSON type (ids of one entity
    are integers in some tools and strings in others)."""
    if value is None or kind in ("array", "object"):
        return False
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    return kind != "boolean" or isinstance(value, bool)


async def check_domain(spec: DomainSpec) -> CheckResult:
    """Raises `UserError` when the domain does not build at all (its tables or seed rows)."""
    domain = compile_domain(spec)
    env = await Environment.build(domain)
    failures: dict[str, ToolFailure] = {}
    # Reads share one fork (a read that writes is rolled back and reported by the runtime);
    # each write gets a fresh one. Every fork pays SQLite's schema parse on its first call.
    reads = [op for op in spec.tools if op.kind == "read"]
    writes = [op for op in spec.tools if op.kind == "write"]
    for batch in [reads, *([op] for op in writes)]:
        async with env.fork() as state:
            for op in batch:
                obs = await state.call(op.name, valid_arguments(op, dict(domain.seed)))
                if obs.error is not None:
                    failures[op.name] = ToolFailure(kind=obs.error.value, observation=obs.content)
    kept = [op for op in spec.tools if op.name not in failures]
    return CheckResult(spec.model_copy(update={"tools": kept}), failures, env)
