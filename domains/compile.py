"""Compile a DomainSpec into runtime tables and tools, deterministically, with no exec.

Tables become SQLAlchemy Core tables (the layer under SQLModel: a SQLModel class per table
costs ~4.5 ms, a minute for the shared corpus's tables) in a MetaData of their own; each tool
becomes a runtime `Tool` whose arguments are validated against its own JSON Schema and whose
implementation interprets its operator with SQL fixed at compile time and arguments bound as
parameters. The paper has a model write each tool as Python; these are safe by construction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from sqlalchemy import Boolean, Column, Float, ForeignKey, Integer, MetaData, String, Table
from sqlalchemy.types import TypeEngine

from agentscaler.runtime import (
    Database,
    Domain,
    JsonSchemaArguments,
    Statement,
    Tool,
    ToolError,
)

from .seed import seed_rows
from .spec import ColumnSpec, DomainSpec, OperatorSpec, TableSpec

_SQL: dict[str, type[TypeEngine[Any]]] = {
    "string": String,
    "integer": Integer,
    "number": Float,
    "boolean": Boolean,
    "json": String,  # JSON values are stored as their canonical text
}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def core_table(spec: TableSpec, metadata: MetaData) -> Table:
    """A Core table: primary key first, every other column nullable; foreign keys declared."""
    columns = [
        Column(c.name, _SQL[c.type], primary_key=True)
        if c.name == spec.primary_key
        else Column(
            c.name,
            _SQL[c.type],
            ForeignKey(f"{c.references}.{c.references}_id") if c.references else None,
        )
        for c in spec.columns
    ]
    return Table(spec.name, metadata, *columns)


def _value(value: Any, column: ColumnSpec) -> Any:
    if value is None:
        return None
    if column.type == "json" or isinstance(value, list | dict):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return value


def operator_tool(op: OperatorSpec, table: TableSpec) -> Tool[Any]:
    """The runtime tool for one operator; its SQL is built here, once."""
    cols = {arg: table.column(col) for arg, col in op.columns.items()}
    pk = table.primary_key
    entity = table.name
    fn: Callable[[Database, dict[str, Any]], Awaitable[Any]]
    if op.action == "select":
        # JSON values (arrays, objects) do not filter: equality on their text means little.
        filters = [arg for arg in op.columns if arg != op.key and cols[arg].type != "json"]
        where = [f"{_q(pk)} = :key"] if op.key else []
        where += [f"(:f{i} IS NULL OR {_q(cols[a].name)} = :f{i})" for i, a in enumerate(filters)]
        sql = f"SELECT * FROM {_q(entity)}" + (f" WHERE {' AND '.join(where)}" if where else "")
        stmt = Statement(sql + f" ORDER BY {_q(pk)} LIMIT {20 if op.many else 1}")

        async def fn(db: Database, args: dict[str, Any]) -> Any:
            params = {f"f{i}": _value(args.get(a), cols[a]) for i, a in enumerate(filters)}
            if op.key:
                params["key"] = args.get(op.key)
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

        async def fn(db: Database, args: dict[str, Any]) -> Any:
            key = args.get(op.key) if op.key else None
            if key is None:
                row = await db.fetch_one(last)
                n = row[0] if row else 1
                key = n if integer_key else f"{entity}_{n:04d}"
            params = {f"v{i}": _value(args.get(a), cols[a]) for i, a in enumerate(written)}
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

        async def fn(db: Database, args: dict[str, Any]) -> Any:
            key = args.get(op.key or "")
            params = {f"v{i}": _value(args.get(a), cols[a]) for i, a in enumerate(written)}
            if await db.execute(update, {"key": key, **params}) == 0:
                raise ToolError(f"Error: {entity} {key} not found")
            return {"status": "updated", pk: key}

    else:
        delete = Statement(f"DELETE FROM {_q(entity)} WHERE {_q(pk)} = :key")

        async def fn(db: Database, args: dict[str, Any]) -> Any:
            key = args.get(op.key or "")
            if await db.execute(delete, {"key": key}) == 0:
                raise ToolError(f"Error: {entity} {key} not found")
            return {"status": "deleted", pk: key}

    return Tool(
        name=op.name,
        description=op.description or op.name,
        args=JsonSchemaArguments(op.parameters),
        kind=op.kind,
        fn=fn,
    )


def compile_domain(spec: DomainSpec) -> Domain:
    """Tables, tools and seed rows of a runtime Domain; the same spec gives the same domain."""
    metadata = MetaData()
    tables = {t.name: t for t in spec.tables}
    models = [core_table(t, metadata) for t in spec.tables]
    tools = [operator_tool(op, tables[op.table]) for op in spec.tools]
    return Domain(
        name=spec.name,
        tables=models,
        tools=tools,
        policy=f"You are the agent of the {spec.name} domain. Use the tools to serve the user.",
        seed=seed_rows(spec),
    )
