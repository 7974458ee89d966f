"""Domains, their built templates (`Environment`) and per-session forks (`Fork`).

A domain is typed tables (SQLModel classes, or SQLAlchemy Core `Table`s for machine-generated
domains) plus tools. `Environment.build` creates the template
database once, validates and inserts the seed rows, and serializes it; `Environment.fork()`
gives each session its own in-memory copy by one `deserialize()` of that image.
"""

from __future__ import annotations

import sqlite3
import types
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio
import structlog
from pydantic import ValidationError
from pydantic_ai.tools import ToolDefinition
from pydantic_core import SchemaValidator, core_schema
from sqlalchemy import Column, Table
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlmodel import SQLModel

from .errors import UserError
from .fork import FileStorage, Fork, MemoryStorage
from .sql import ConnectionCache, Database, FileDatabase, MemoryDatabase
from .state_hash import DIRTY_DDL, HashBase, TableLayout
from .tools import (
    Observation,
    Tool,
)

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Domain:
    """A domain as its author writes it: tables, tools, the agent's policy and seed rows."""

    name: str
    # SQLModel table classes; or Core `Table`s, whose seed rows are validated by column type
    # (a SQLModel class costs ~4.5 ms to create: too much for thousands of generated tables).
    tables: Sequence[type[SQLModel] | Table]
    tools: Sequence[Tool[Any]]
    policy: str = ""
    seed: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    # How a call of a tool the domain lacks reads (name -> observation), when a domain must word
    # it as the benchmark it reproduces does; by default it names the known tools.
    unknown_tool: Callable[[str], str] | None = None
    # Dual control, on the user's domain: after every successful tool call on either side, bring
    # the user's state in line with the agent's, as sync(agent_fork, user_fork) (τ²-bench's
    # telecom copies line status, roaming, data and bills onto the phone).
    sync_from_agent: Callable[[Fork, Fork], Awaitable[None]] | None = None
    # Environment functions: state set-ups and checks a task may run before and after a session
    # (τ²-bench's initialization actions and env assertions), never offered to a model.
    functions: Mapping[str, Callable[[Database, dict[str, Any]], Awaitable[Any]]] = field(
        default_factory=dict
    )


def _table_of(model: type[SQLModel] | Table) -> Table:
    table = model if isinstance(model, Table) else getattr(model, "__table__", None)
    if not isinstance(table, Table):
        name = getattr(model, "__name__", repr(model))
        raise UserError(f"{name} is not a SQLModel table (declare it with table=True)")
    return table


_SCALARS: dict[type, Callable[[], core_schema.CoreSchema]] = {
    str: core_schema.str_schema,
    int: core_schema.int_schema,
    float: core_schema.float_schema,
    bool: core_schema.bool_schema,
}


def _column_schema(column: Column[Any]) -> core_schema.CoreSchema:
    try:
        python = column.type.python_type
    except NotImplementedError:
        return core_schema.any_schema()
    make = _SCALARS.get(python)
    scalar = make() if make is not None else core_schema.any_schema()
    return core_schema.nullable_schema(scalar) if column.nullable else scalar


def _row_validator(model: type[SQLModel] | Table) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """Seed row -> validated values in column order: the SQLModel class validates its own rows;
    a Core table's rows are checked against its column types (absent columns are NULL)."""
    table = _table_of(model)
    columns = [str(c.name) for c in table.columns]
    if isinstance(model, Table):
        fields = {
            str(c.name): core_schema.typed_dict_field(_column_schema(c), required=not c.nullable)
            for c in table.columns
        }
        validator = SchemaValidator(core_schema.typed_dict_schema(fields, extra_behavior="forbid"))

        def core_row(raw: Mapping[str, Any]) -> tuple[Any, ...]:
            row = validator.validate_python(raw)
            return tuple(row.get(c) for c in columns)

        return core_row

    def model_row(raw: Mapping[str, Any]) -> tuple[Any, ...]:
        obj = model.model_validate(raw)
        return tuple(getattr(obj, c) for c in columns)

    return model_row


def _validated_rows(
    domain: str, model: type[SQLModel] | Table, rows: Sequence[Mapping[str, Any]]
) -> Iterable[tuple[Any, ...]]:
    validate = _row_validator(model)
    for i, raw in enumerate(rows):
        try:
            yield validate(raw)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise UserError(
                f"domain {domain!r}, table {_table_of(model).name!r}, seed row {i}: field "
                f"{loc!r}: {first['msg']} (got {first.get('input')!r})"
            ) from exc


@dataclass(frozen=True, slots=True)
class Replay:
    """The result of replaying calls on a fresh fork."""

    observations: list[Observation]
    initial_hash: str
    final_hash: str


# Below this image size a fork's live connection (60-120 KB of schema, statements and page
# cache) would outweigh its data, so idle forks are parked as images; above it, all stay live.
PARK_BELOW_BYTES = 256 * 1024
MAX_LIVE_WHEN_PARKING = 64


class Environment:
    """A built domain template: its serialized image, tools, and the connections forks share."""

    def __init__(
        self,
        domain: Domain,
        image: bytes,
        layouts: Sequence[TableLayout],
        base: HashBase,
        max_live_connections: int | Literal["auto"] | None = "auto",
    ) -> None:
        self.domain = domain
        self.image = image
        if max_live_connections == "auto":
            max_live_connections = MAX_LIVE_WHEN_PARKING if len(image) < PARK_BELOW_BYTES else None
        self.connections = ConnectionCache(image, max_live_connections)
        self.layouts = tuple(layouts)
        self.hash_base = base
        self.tools: Mapping[str, Tool[Any]] = types.MappingProxyType(
            {t.name: t for t in domain.tools}
        )
        self.tool_definitions: list[ToolDefinition] = [t.definition for t in domain.tools]

    @property
    def name(self) -> str:
        return self.domain.name

    @property
    def initial_hash(self) -> str:
        return self.hash_base.state_hash

    @classmethod
    async def build(
        cls, domain: Domain, *, max_live_connections: int | Literal["auto"] | None = "auto"
    ) -> Environment:
        """Create the template database, insert validated seed rows, serialize it once.

        `max_live_connections` bounds how many forks keep a live SQLite connection between
        calls (see `ConnectionCache`); "auto" parks idle forks of small domains only.
        """
        names = [t.name for t in domain.tools]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise UserError(f"domain {domain.name!r}: duplicate tool names {dup}")
        tables = {_table_of(m).name: (m, _table_of(m)) for m in domain.tables}
        unknown = set(domain.seed) - set(tables)
        if unknown:
            raise UserError(f"domain {domain.name!r}: seed names unknown tables {sorted(unknown)}")
        conn = sqlite3.connect(":memory:")
        conn.isolation_level = None
        # 1 KiB pages: a connection's page cache starts with 20 pages, so 4 KiB pages cost
        # ~107 KB per live connection beyond the image, 1 KiB pages ~45 KB (measured).
        conn.execute("PRAGMA page_size=1024")
        # Stored in the image, so every copy has it: scans must not double a big image in page
        # cache. (Setting cache_size after each deserialize() instead costs ~185 us: measured.)
        conn.execute("PRAGMA default_cache_size=64")
        dialect = sqlite_dialect.dialect()
        layouts = []
        conn.execute("BEGIN")
        conn.execute(DIRTY_DDL)
        for name, (model, table) in tables.items():
            if table.kwargs.get("sqlite_with_rowid") is False:
                raise UserError(f"table {name!r}: WITHOUT ROWID tables are not supported")
            conn.execute(str(CreateTable(table).compile(dialect=dialect)))
            for index in table.indexes:
                conn.execute(str(CreateIndex(index).compile(dialect=dialect)))
            columns = [str(c.name) for c in table.columns]
            shadowing = {c for c in columns if c.lower() in ("rowid", "oid", "_rowid_")}
            if shadowing:
                raise UserError(
                    f"table {name!r}: column {sorted(shadowing)[0]!r} would hide SQLite's rowid, "
                    "which state hashing tracks rows by; rename it"
                )
            pk = [str(c.name) for c in table.primary_key.columns]
            if not pk:
                raise UserError(f"table {name!r} has no primary key")
            layouts.append(TableLayout.create(name, columns, pk))
            marks = ", ".join("?" for _ in columns)
            quoted = ", ".join(f'"{c}"' for c in columns)
            rows = _validated_rows(domain.name, model, domain.seed.get(name, ()))
            try:
                conn.executemany(f'INSERT INTO "{name}" ({quoted}) VALUES ({marks})', rows)
            except sqlite3.IntegrityError as exc:
                raise UserError(
                    f"domain {domain.name!r}, table {name!r}: seed rows: {exc}"
                ) from exc
        # Change-logging triggers come after the seed rows, so the log starts (and stays) empty
        # and the image needs no VACUUM to drop its pages.
        for layout in layouts:
            for ddl in layout.triggers():
                conn.execute(ddl)
        conn.execute("COMMIT")
        for t in domain.tools:
            for stmt in t.statements:
                problem = stmt.check(conn)
                if problem is not None:
                    raise UserError(
                        f"domain {domain.name!r}, tool {t.name!r}: SQL does not compile "
                        f"({problem}): {stmt.sql}"
                    )
        db = MemoryDatabase(conn)
        base = await HashBase.compute(db, layouts)
        if conn.execute("PRAGMA freelist_count").fetchone()[0]:
            conn.execute("VACUUM")
        image = conn.serialize()
        conn.close()
        return cls(domain, image, layouts, base, max_live_connections)

    async def replay(self, calls: Iterable[tuple[str, Mapping[str, Any]]]) -> Replay:
        """Run calls in order on a fresh fork: the gold observations and final state hash."""
        async with self.fork() as state:
            observations = [await state.call(name, args) for name, args in calls]
            return Replay(observations, self.initial_hash, await state.state_hash())

    def fork(self) -> Fork:
        """A private in-memory copy for one session; use as `async with env.fork() as state:`."""
        return Fork(self, MemoryStorage(self.connections))

    async def fork_file(self, path: str | Path) -> Fork:
        """A private copy on disk, driven through aiosqlite (for file-backed environments)."""
        target = Path(path)
        await anyio.Path(target).write_bytes(self.image)
        return Fork(self, FileStorage(await FileDatabase.open(str(target))))
