"""DomainSpec: a domain's tables and its tools as declarative read/write operators.

Plain, inspectable JSON. `domains.compile` interprets it; nothing in it is code.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

ColumnType = Literal["string", "integer", "number", "boolean", "json"]
# How a column type is held in Python (JSON values are stored as their text).
PYTHON_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "json": str,
}


class ColumnSpec(BaseModel):
    name: str
    type: ColumnType
    references: str | None = None  # a foreign key: the referenced table (by its primary key)
    enum: list[Any] | None = None  # the values a tool's schema allows, so seeds respect them


class TableSpec(BaseModel):
    name: str
    primary_key: str
    columns: list[ColumnSpec]  # the primary key first

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)


class OperatorSpec(BaseModel):
    """A tool: what the agent sees (name, description, parameters) and what it does."""

    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema object, as the agent sees it
    kind: Literal["read", "write"]
    action: Literal["select", "insert", "update", "delete"]
    table: str
    key: str | None = None  # the argument that names one row (its primary key), if any
    columns: dict[str, str] = Field(default_factory=dict)  # argument -> column it reads/writes
    many: bool = False  # select: a list of rows rather than one row


class DomainSpec(BaseModel):
    name: str
    tables: list[TableSpec]
    tools: list[OperatorSpec]
    seed: int = 0
    rows_per_table: int = 12
    # Dependency edges (from, to) a model confirmed (`pipeline.llm`); None: every inferred edge.
    confirmed_edges: list[tuple[str, str]] | None = None
