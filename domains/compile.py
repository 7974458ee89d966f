"""Compile a DomainSpec into runtime tables and tools, deterministically, with no exec.

Tables become SQLModel classes in a registry of their own (domains never collide); each tool
becomes a runtime `Tool` whose argument model is built from its JSON Schema and whose
implementation interprets its operator with SQL fixed at compile time and arguments bound as
parameters. The paper has a model write each tool as Python; these are safe by construction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, create_model
from sqlalchemy.orm import registry
from sqlmodel import Field as Column
from sqlmodel import SQLModel

from agentscaler.runtime import Database, Domain, Statement, Tool, ToolError

from .seed import seed_rows
from .spec import PYTHON_TYPES, ColumnSpec, DomainSpec, OperatorSpec, TableSpec

_ARG: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "array": list[Any],
    "object": dict[str, Any],
}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_model(table: TableSpec, reg: registry, index: int) -> type[SQLModel]:
    """A SQLModel class for one table: primary key first, every other column nullable."""
    base = type(f"_Base{index}", (SQLModel,), {}, registry=reg)
    annotations: dict[str, Any] = {}
    attrs: dict[str, Any] = {"__tablename__": table.name}
    for column in table.columns:  # names are safe field names (infer.column_name)
        if column.name == table.primary_key:
            annotations[column.name] = PYTHON_TYPES[column.type]
            attrs[column.name] = Column(primary_key=True)
        else:
            annotations[column.name] = PYTHON_TYPES[column.type] | None
            attrs[column.name] = Column(default=None)
    attrs["__annotations__"] = annotations
    return type(f"T{index}_{table.name}", (base,), attrs, table=True)


def args_model(op: OperatorSpec) -> type[BaseModel]:
    """Pydantic arguments from the tool's JSON Schema (aliases keep the agent-facing names)."""
    props: dict[str, Any] = op.parameters.get("properties", {})
    required = set(op.parameters.get("required", []))
    fields: dict[str, Any] = {}
    for i, (name, schema) in enumerate(props.items()):
        kind = schema.get("type") if isinstance(schema, dict) else None
        py = _ARG.get(kind, Any) if isinstance(kind, str) else Any
        desc = schema.get("description") if isinstance(schema, dict) else None
        if name in required:
            fields[f"a{i}"] = (py, Field(alias=name, description=desc))
        else:
            fields[f"a{i}"] = (py | None, Field(default=None, alias=name, description=desc))
    return create_model(
        f"{op.name}_args", __config__=ConfigDict(populate_by_name=False, extra="forbid"), **fields
    )


def _value(value: Any, column: ColumnSpec) -> Any:
    if value is None:
        return None
    if column.type == "json" or isinstance(value, list | dict):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return value


def operator_tool(op: OperatorSpec, table: TableSpec) -> Tool[Any]:
    """The runtime tool for one operator; its SQL is built here, once."""
    model = args_model(op)
    aliases = {f.alias: name for name, f in model.model_fields.items()}
    cols = {arg: table.column(col) for arg, col in op.columns.items()}
    pk = table.primary_key
    entity = table.name
    fn: Callable[[Database, Any], Awaitable[Any]]
    if op.action == "select":
        # JSON values (arrays, objects) do not filter: equality on their text means little.
        filters = [arg for arg in op.columns if arg != op.key and cols[arg].type != "json"]
        where = [f"{_q(pk)} = :key"] if op.key else []
        where += [f"(:f{i} IS NULL OR {_q(cols[a].name)} = :f{i})" for i, a in enumerate(filters)]
        sql = f"SELECT * FROM {_q(entity)}" + (f" WHERE {' AND '.join(where)}" if where else "")
        stmt = Statement(sql + f" ORDER BY {_q(pk)} LIMIT {20 if op.many else 1}")

        async def fn(db: Database, args: Any) -> Any:
            params = {
                f"f{i}": _value(getattr(args, aliases[a]), cols[a]) for i, a in enumerate(filters)
            }
            if op.key:
                params["key"] = getattr(args, aliases[op.key])
            rows = [dict(r) for r in await db.fetch_all(stmt, params)]
            if op.many:
                return rows
            if not rows:
                raise ToolError(f"Error: {entity} not found")
            return rows[0]

    elif op.action == "insert":
        written = [a for a in op.columns if op.columns[a] != pk]
        names = [pk, *(cols[a].name for a in written)]
        insert = Statement(
            f"INSERT INTO {_q(entity)} ({', '.join(map(_q, names))}) "
            f"VALUES (:pk, {', '.join(f':v{i}' for i in range(len(written)))})"
            if written
            else f"INSERT INTO {_q(entity)} ({_q(pk)}) VALUES (:pk)"
        )
        last = Statement(f"SELECT COALESCE(MAX(rowid), 0) + 1 FROM {_q(entity)}")
        integer_key = table.column(pk).type == "integer"

        async def fn(db: Database, args: Any) -> Any:
            key = getattr(args, aliases[op.key]) if op.key else None
            if key is None:
                row = await db.fetch_one(last)
                n = row[0] if row else 1
                key = n if integer_key else f"{entity}_{n:04d}"
            params = {
                f"v{i}": _value(getattr(args, aliases[a]), cols[a]) for i, a in enumerate(written)
            }
            try:
                await db.execute(insert, {"pk": key, **params})
            except Exception as exc:  # a duplicate key is the caller's mistake
                raise ToolError(f"Error: {entity} {key} already exists") from exc
            return {"status": "created", pk: key}

    elif op.action == "update":
        written = [a for a in op.columns if a != op.key]
        sets = ", ".join(
            f"{_q(cols[a].name)} = COALESCE(:v{i}, {_q(cols[a].name)})"
            for i, a in enumerate(written)
        )
        update = Statement(
            f"UPDATE {_q(entity)} SET {sets or _q(pk) + ' = ' + _q(pk)} WHERE {_q(pk)} = :key"
        )

        async def fn(db: Database, args: Any) -> Any:
            key = getattr(args, aliases[op.key or ""])
            params = {
                f"v{i}": _value(getattr(args, aliases[a]), cols[a]) for i, a in enumerate(written)
            }
            if await db.execute(update, {"key": key, **params}) == 0:
                raise ToolError(f"Error: {entity} {key} not found")
            return {"status": "updated", pk: key}

    else:
        delete = Statement(f"DELETE FROM {_q(entity)} WHERE {_q(pk)} = :key")

        async def fn(db: Database, args: Any) -> Any:
            key = getattr(args, aliases[op.key or ""])
            if await db.execute(delete, {"key": key}) == 0:
                raise ToolError(f"Error: {entity} {key} not found")
            return {"status": "deleted", pk: key}

    return Tool(
        name=op.name, description=op.description or op.name, args=model, kind=op.kind, fn=fn
    )


def compile_domain(spec: DomainSpec) -> Domain:
    """Tables, tools and seed rows of a runtime Domain; the same spec gives the same domain."""
    reg = registry()
    tables = {t.name: t for t in spec.tables}
    models = [table_model(t, reg, i) for i, t in enumerate(spec.tables)]
    tools = [operator_tool(op, tables[op.table]) for op in spec.tools]
    return Domain(
        name=spec.name,
        tables=models,
        tools=tools,
        policy=f"You are the agent of the {spec.name} domain. Use the tools to serve the user.",
        seed=seed_rows(spec),
    )
