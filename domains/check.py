"""Check a compiled domain by execution: every tool, called with valid arguments grounded in
the seeded database, must succeed. Failing tools are reported and dropped."""

from __future__ import annotations

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


def valid_arguments(op: OperatorSpec, seed: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Required arguments (and the row key) with values that exist in the seeded database: the
    key of a seeded row, that row's own values for filters, seeded ids for foreign keys."""
    props: dict[str, Any] = op.parameters.get("properties", {})
    wanted = set(op.parameters.get("required", [])) | ({op.key} if op.key else set())
    row = (seed.get(op.table) or [{}])[0]
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
        elif entity and seed.get(entity):
            args[name] = seed[entity][0][f"{entity}_id"]
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
