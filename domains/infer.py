"""Infer a DomainSpec from a domain's tool specs.

Entities come from id-like parameters (`order_id`, `userId` -> order, user) or, when a tool has
none, from its name with the verb removed (`getWeatherForecast` -> weather_forecast). The verb
decides the operator: read verbs select, create-like verbs insert, delete-like verbs delete,
other write verbs update the row their id argument names. Every other argument is a column of
the tool's entity table; id arguments of other entities become foreign keys.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from agentscaler.pipeline.ingest import ToolSpec

from .spec import PYTHON_TYPES, ColumnSpec, ColumnType, DomainSpec, OperatorSpec, TableSpec

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z]|\b|\d|_)|[A-Z]?[a-z]+|\d+")
INSERT = {
    "create",
    "add",
    "insert",
    "register",
    "book",
    "post",
    "send",
    "make",
    "new",
    "submit",
    "schedule",
    "upload",
    "save",
    "place",
    "log",
    "record",
    "generate",
    "open",
}
DELETE = {"delete", "remove", "clear", "drop", "erase", "unregister", "purge"}
UPDATE = {
    "update",
    "modify",
    "edit",
    "change",
    "set",
    "rename",
    "enable",
    "disable",
    "toggle",
    "cancel",
    "close",
    "assign",
    "move",
    "exchange",
    "return",
    "transfer",
    "approve",
    "reject",
    "reset",
    "mark",
    "archive",
    "activate",
    "deactivate",
    "adjust",
    "apply",
}
WRITE = INSERT | DELETE | UPDATE
LISTING = {"list", "search", "find", "query", "browse", "filter", "all"}
_JSON_TYPES: dict[str, ColumnType] = {
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
}


ROWID_ALIASES = frozenset({"rowid", "oid", "_rowid_"})


def words(name: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(name)]


def snake(parts: Sequence[str]) -> str:
    text = "_".join(parts)
    text = re.sub(r"[^a-z0-9_]", "", text) or "item"
    if text in ROWID_ALIASES:  # SQLite's own names for the row key: never a column
        return f"{text}_value"
    return f"t_{text}" if text[0].isdigit() else text


def id_entity(param: str) -> str | None:
    """`order_id` / `orderId` / `OrderID` -> "order"; a bare `id` -> None."""
    w = words(param)
    if len(w) >= 2 and w[-1] in ("id", "ids"):
        return snake(w[:-1])
    return None


def name_entity(tool_name: str) -> str:
    w = words(tool_name)
    while w and (
        w[0] in WRITE
        or w[0] in LISTING
        or w[0]
        in {
            "get",
            "fetch",
            "retrieve",
            "check",
            "show",
            "view",
            "lookup",
            "read",
            "calculate",
            "compute",
            "count",
            "is",
            "has",
            "by",
        }
    ):
        w = w[1:]
    if "by" in w:
        w = w[: w.index("by")]
    if w and w[-1] in ("id", "ids", "details", "info", "information", "list", "data"):
        w = w[:-1]
    if w and w[-1].endswith("s") and len(w[-1]) > 3 and not w[-1].endswith("ss"):
        w[-1] = w[-1][:-1]
    return snake(w) if w else snake(words(tool_name))


def column_type(schema: Any) -> ColumnType:
    kind = schema.get("type") if isinstance(schema, dict) else None
    return _JSON_TYPES.get(kind, "json") if isinstance(kind, str) else "json"


def infer_domain(name: str, tools: Sequence[ToolSpec], seed: int = 0) -> DomainSpec:
    """A deterministic DomainSpec for these tools (order of `tools` does not matter)."""
    tools = sorted(tools, key=lambda t: t.name)
    plans = []
    entities: list[str] = []
    for tool in tools:
        props: dict[str, Any] = tool.parameters.get("properties", {})
        ids = [(p, id_entity(p)) for p in props]
        own = next((e for p, e in ids if e), None)
        entity = own or name_entity(tool.name)
        verb = (words(tool.name) or ["get"])[0]
        plans.append((tool, entity, verb, props))
        if entity not in entities:
            entities.append(entity)
    pk_type: dict[str, ColumnType] = {}  # an entity's id type: integer if its id args say so
    for _, _, _, props in plans:
        for param, schema in props.items():
            ent = id_entity(param)
            if ent and ent not in pk_type and column_type(schema) in ("string", "integer"):
                pk_type[ent] = column_type(schema)
    tables: dict[str, dict[str, ColumnSpec]] = {
        e: {f"{e}_id": ColumnSpec(name=f"{e}_id", type=pk_type.get(e, "string"))} for e in entities
    }
    operators = []
    for tool, entity, verb, props in plans:
        pk = f"{entity}_id"
        mapping: dict[str, str] = {}
        key = None
        for param, schema in props.items():
            ent = id_entity(param)
            if ent == entity and key is None and column_type(schema) == pk_type.get(entity):
                key = param
                mapping[param] = pk
                continue
            column = snake(words(param)) if ent is None else f"{ent}_id"
            if column == pk:
                column = f"{column}_value"
            cols = tables[entity]
            if column not in cols:
                ref = (
                    ent
                    if ent in tables and ent != entity and column_type(schema) == "string"
                    else None
                )
                kind = column_type(schema)
                enum = schema.get("enum") if isinstance(schema, dict) else None
                allowed = [v for v in enum or () if type(v) is PYTHON_TYPES[kind]]
                cols[column] = ColumnSpec(
                    name=column,
                    type=kind,
                    references=ref,
                    enum=allowed if kind != "json" and allowed else None,
                )
            mapping[param] = column
        if verb in INSERT:
            action, kind = "insert", "write"
        elif verb in DELETE and key:
            action, kind = "delete", "write"
        elif verb in WRITE and key:
            action, kind = "update", "write"
        elif verb in WRITE:  # a write naming no row records a new one
            action, kind = "insert", "write"
        else:
            action, kind = "select", "read"
        many = action == "select" and (key is None or verb in LISTING)
        operators.append(
            OperatorSpec(
                name=tool.name,
                description=tool.description,
                parameters=tool.parameters,
                kind=kind,
                action=action,
                table=entity,
                key=key,
                columns=mapping,
                many=many,
            )
        )
    specs = [
        TableSpec(name=e, primary_key=f"{e}_id", columns=list(cols.values()))
        for e, cols in sorted(tables.items())
    ]
    return DomainSpec(name=name, tables=specs, tools=operators, seed=seed)
