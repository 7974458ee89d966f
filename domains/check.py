"""Check a compiled domain by execution: every tool, called with valid arguments grounded in
the seeded database, must succeed. Failing tools are reported and dropped."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
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


class CheckResult(BaseModel):
    spec: DomainSpec  # without the failing tools
    failures: dict[str, str]  # tool -> the observation it returned


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
        schema = props.get(name, {})
        column = op.columns.get(name)
        entity = id_entity(name)
        if op.action == "insert" and name == op.key:
            args[name] = 10_000 if isinstance(row.get(column or ""), int) else f"{op.table}_new"
        elif (
            column in row
            and row[column] is not None
            and (name == op.key or op.action == "select")
            and not (isinstance(schema, dict) and schema.get("type") in ("array", "object"))
        ):
            args[name] = row[column]
        elif entity and rows.get(entity):
            args[name] = pick(rows[entity])[f"{entity}_id"]
        elif isinstance(schema, dict) and schema.get("enum"):
            args[name] = schema["enum"][0]
        else:
            kind = schema.get("type") if isinstance(schema, dict) else None
            args[name] = _EXAMPLE.get(kind, "example") if isinstance(kind, str) else "example"
    return args


async def check_domain(spec: DomainSpec) -> CheckResult:
    domain = compile_domain(spec)
    env = await Environment.build(domain)
    failures: dict[str, str] = {}
    for op in spec.tools:
        async with env.fork() as state:
            obs = await state.call(op.name, valid_arguments(op, dict(domain.seed)))
        if not obs.ok:
            failures[op.name] = obs.content
    kept = [op for op in spec.tools if op.name not in failures]
    return CheckResult(spec=spec.model_copy(update={"tools": kept}), failures=failures)
