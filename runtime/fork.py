"""A fork: one session's private copy of a domain database, its tools and its state hash.

Where the data lives is a storage detail: in memory (live in a shared connection, or parked as
an image between calls; see `ConnectionCache`), or in a file driven through aiosqlite. Every
access goes through `database()`, which also feeds the incremental state hash the rows that
the access changed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Self

import anyio
import structlog
from pydantic import ValidationError

from .errors import ClosedError, ToolError, UserError
from .sql import ConnectionCache, Database, FileDatabase, MemoryDatabase
from .state_hash import StateHasher, full_state_hash
from .tools import Observation, ToolErrorKind, describe_validation_error, render_result

if TYPE_CHECKING:
    from .environment import Environment

log = structlog.get_logger(__name__)


class MemoryStorage:
    """The fork's data in memory, through the template's connection cache."""

    __slots__ = ("borrowed", "cache", "changed", "depth", "slot")

    def __init__(self, cache: ConnectionCache) -> None:
        self.cache = cache
        self.slot = cache.open()
        self.changed = False  # rows were logged for the state hash and not yet absorbed
        # The connection checked out now, and how deep: a nested `database()` must get the
        # same connection, not a second copy deserialized from the slot's last parked image.
        self.borrowed: sqlite3.Connection | None = None
        self.depth = 0

    def open(self) -> _MemoryCheckout:
        return _MemoryCheckout(self)

    async def close(self) -> None:
        self.cache.release(self.slot)


class _MemoryCheckout:
    """Borrows a connection holding the fork's data for the duration of an `async with`.

    A class rather than a generator-based context manager: it wraps every tool call.
    """

    __slots__ = ("before", "conn", "storage")

    def __init__(self, storage: MemoryStorage) -> None:
        self.storage = storage

    async def __aenter__(self) -> Database:
        storage = self.storage
        if storage.borrowed is None:
            storage.borrowed = storage.cache.checkout(storage.slot)
        storage.depth += 1
        self.conn = storage.borrowed
        self.before = self.conn.total_changes
        return MemoryDatabase(self.conn)

    async def __aexit__(self, *exc: object) -> None:
        storage = self.storage
        if self.conn.total_changes != self.before:
            storage.slot.dirty = storage.changed = True
        storage.depth -= 1
        if storage.depth == 0:
            storage.borrowed = None
            storage.cache.checkin(storage.slot, self.conn)


class FileStorage:
    """The fork's data in a database file, through aiosqlite."""

    __slots__ = ("changed", "db")

    def __init__(self, db: FileDatabase) -> None:
        self.db = db
        self.changed = False

    @asynccontextmanager
    async def open(self) -> AsyncIterator[Database]:
        before = await self.db.total_changes()
        try:
            yield self.db
        finally:
            with anyio.CancelScope(shield=True):
                if await self.db.total_changes() != before:
                    self.changed = True

    async def close(self) -> None:
        await self.db.close()


class Fork:
    """One session's copy of a domain: call its tools, hash its state. An async context manager."""

    __slots__ = ("_closed", "_hasher", "_storage", "env")

    def __init__(self, env: Environment, storage: MemoryStorage | FileStorage) -> None:
        self.env = env
        self._storage = storage
        self._hasher = StateHasher(env.hash_base)
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._storage.close()

    def database(self) -> AbstractAsyncContextManager[Database]:
        """`async with fork.database() as db:` direct access to the fork's database."""
        if self._closed:
            raise ClosedError(f"fork of domain {self.env.name!r} is closed")
        return self._storage.open()

    async def _absorb(self) -> StateHasher:
        """The hasher, with the rows changed since the last call read in (once, not per write)."""
        if self._storage.changed:
            async with self.database() as db:
                await self._hasher.absorb(db)
            self._storage.changed = False
        elif self._closed:
            raise ClosedError(f"fork of domain {self.env.name!r} is closed")
        return self._hasher

    async def state_hash(self) -> str:
        """The canonical state hash (see state_hash.py), maintained incrementally."""
        return (await self._absorb()).state_hash()

    async def run_function(self, name: str, arguments: Mapping[str, Any]) -> Any:
        """Run one of the domain's environment functions (a task's set-up or check) here."""
        function = self.env.domain.functions.get(name)
        if function is None:
            known = ", ".join(self.env.domain.functions) or "none"
            raise UserError(
                f"domain {self.env.name!r} has no function {name!r} (its functions: {known})"
            )
        async with self.database() as db:
            return await function(db, dict(arguments))

    async def changed_keys(self) -> dict[str, set[tuple[Any, ...]]]:
        """Primary keys of the rows this fork inserted, updated or deleted, by table (a key
        that changed counts under its old and new value): what a diff or a cache needs."""
        return (await self._absorb()).changed_keys()

    async def full_state_hash(self) -> str:
        """Recompute the hash from every row (slow; the reference for the incremental one)."""
        async with self.database() as db:
            return await full_state_hash(db, self.env.layouts)

    async def rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of a table in primary-key order, as plain dicts (for inspection)."""
        layout = next((t for t in self.env.layouts if t.name == table), None)
        if layout is None:
            raise UserError(f"domain {self.env.name!r} has no table {table!r}")
        async with self.database() as db:
            rows = [tuple(r) for r in await db.fetch_all(layout.select_all)]
        rows.sort(key=layout.key)
        return [dict(zip(layout.columns, r[2:], strict=True)) for r in rows]

    async def call(
        self, name: str, arguments: str | bytes | Mapping[str, Any] | None
    ) -> Observation:
        """Validate and run one tool call. Never raises for anything the model did."""
        tool = self.env.tools.get(name)
        if tool is None:
            worded = self.env.domain.unknown_tool
            text = (
                worded(name)
                if worded is not None
                else f"Error: unknown tool {name!r}; known tools: {', '.join(self.env.tools)}"
            )
            return Observation(name, text, ToolErrorKind.UNKNOWN_TOOL)
        try:
            args = tool.parse(arguments)
        except ValidationError as exc:
            kind = (
                ToolErrorKind.INVALID_JSON
                if any(e["type"] == "json_invalid" for e in exc.errors())
                else ToolErrorKind.INVALID_ARGUMENTS
            )
            return Observation(name, describe_validation_error(name, exc), kind)
        async with self.database() as db:
            before = await db.total_changes()
            try:
                async with db.savepoint():
                    result = await tool.fn(db, args)
                    changed = await db.total_changes() != before
                    if changed and tool.kind == "read":
                        raise _ReadOnlyViolation
                    content = render_result(result)
            except ToolError as exc:
                return Observation(name, str(exc), ToolErrorKind.TOOL_ERROR)
            except _ReadOnlyViolation:
                log.warning("read_only_violation", tool=name, domain=self.env.name)
                msg = f"Error: read tool {name!r} tried to change the database; rolled back"
                return Observation(name, msg, ToolErrorKind.READ_ONLY_VIOLATION)
            except Exception as exc:
                log.warning("tool_crashed", tool=name, domain=self.env.name, error=repr(exc))
                return Observation(
                    name,
                    f"Error: {name} failed: {type(exc).__name__}: {exc}",
                    ToolErrorKind.EXECUTION_ERROR,
                )
        return Observation(name, content, None, changed)


class _ReadOnlyViolation(Exception):
    """Internal: raised inside the savepoint so the write is rolled back."""
