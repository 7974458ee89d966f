"""The SQL surface tools see: statements compiled once, executed with bound parameters only.

Two access paths implement one async `Database` interface, so a tool is written once:

- `MemoryDatabase` runs `sqlite3` on the event-loop thread. An in-memory primary-key query takes
  microseconds; a thread hop per query (aiosqlite) costs 15-50x that and one thread per session
  does not scale to thousands of sessions (README, "SQLite access").
- `FileDatabase` runs `aiosqlite` for databases on disk, where a query can block on I/O.

`Statement` is the only thing the `execute`/`fetch` methods accept, so SQL text is fixed when a
tool is defined and argument values can only arrive as bound parameters.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeAlias

import aiosqlite
import anyio

from .errors import UserError

Params: TypeAlias = Sequence[Any] | Mapping[str, Any]


class Statement:
    """One SQL statement, fixed when a tool is defined and reused for every call.

    `Environment.build` compiles each statement a tool uses against the domain's schema, so a
    typo is a build error naming the tool, not a failed call in the middle of a run.
    """

    __slots__ = ("sql",)

    def __init__(self, sql: str) -> None:
        text = sql.strip().removesuffix(";")
        if not text:
            raise UserError("empty SQL statement")
        self.sql = text

    def check(self, conn: sqlite3.Connection) -> str | None:
        """Compile against a schema without running; returns SQLite's complaint, if any."""
        try:
            conn.execute("EXPLAIN " + self.sql)
        except sqlite3.ProgrammingError:
            return None  # compiled; it only lacked its parameters
        except sqlite3.Error as exc:
            return str(exc)
        return None

    def __repr__(self) -> str:
        return f"Statement({self.sql!r})"


class Database(Protocol):
    """What a tool implementation may do with its session's database."""

    async def fetch_one(self, stmt: Statement, params: Params = ()) -> sqlite3.Row | None: ...

    async def fetch_all(self, stmt: Statement, params: Params = ()) -> list[sqlite3.Row]: ...

    async def execute(self, stmt: Statement, params: Params = ()) -> int:
        """Run a write statement; returns the number of rows it changed."""
        ...

    async def total_changes(self) -> int: ...

    def savepoint(self) -> Any:
        """An async context manager: everything inside commits together or not at all."""
        ...


_SAVEPOINT = "SAVEPOINT agentscaler_call"
_RELEASE = "RELEASE agentscaler_call"
_ROLLBACK = "ROLLBACK TO agentscaler_call"
_LOAD_SCHEMA = "SELECT count(*) FROM sqlite_schema"
MAX_SPARE = 64
IDLE_SPARES = 2  # kept by a template with no open fork: its next task's trials reuse them


class Slot:
    """One fork's in-memory database: parked as a serialized image, or live in a connection."""

    __slots__ = ("dirty", "image")

    def __init__(self, image: bytes) -> None:
        self.image = image  # the template's own bytes until the fork's first write is parked
        self.dirty = False  # the live connection holds writes not yet in `image`


class ConnectionCache:
    """The live SQLite connections of one template, shared by its forks.

    A fresh connection's first query parses the schema and prepares each statement anew
    (~0.25 ms for the example domain), and a live connection costs 60-120 KB beyond its data
    (schema, prepared statements, page cache). So at most `max_live` forks keep a connection
    between calls, least recently used first out; the others are parked as their serialized
    image (nothing at all for a fork that never wrote: it shares the template's bytes). A
    parked fork's next call takes a warm connection and `deserialize()`s its image (~15 us for
    the example domain, ~0.2 ms for 1.4 MB). `max_live=None` keeps every fork live.
    """

    def __init__(self, image: bytes, max_live: int | None) -> None:
        self.image = image
        self.max_live = max_live
        self.forks = 0  # open forks of this template
        self._live: OrderedDict[Slot, sqlite3.Connection] = OrderedDict()
        self._spare: list[sqlite3.Connection] = []

    @property
    def held(self) -> int:
        """Connections open now, live and spare."""
        return len(self._live) + len(self._spare)

    def open(self) -> Slot:
        """A slot for a new fork, holding the template's data."""
        self.forks += 1
        return Slot(self.image)

    def checkout(self, slot: Slot) -> sqlite3.Connection:
        """A connection holding `slot`'s current data, for the caller's exclusive use."""
        conn = self._live.pop(slot, None)
        if conn is not None:
            return conn
        conn = self._spare.pop() if self._spare else self._connect()
        conn.deserialize(slot.image)  # its page-cache bound comes with it (default_cache_size)
        # Load the schema now. Otherwise a statement cached from the connection's previous
        # image runs without it, and rolling back a savepoint around that statement leaves
        # the connection with no schema at all ("no such table"; SQLite 3.40-3.46 at least).
        conn.execute(_LOAD_SCHEMA).fetchone()
        return conn

    def checkin(self, slot: Slot, conn: sqlite3.Connection) -> None:
        """Keep `conn` live for `slot`; park the least recently used fork if over the bound."""
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        self._live[slot] = conn
        if self.max_live is not None:
            while len(self._live) > self.max_live:
                old, old_conn = self._live.popitem(last=False)
                self._park(old, old_conn)
                self._spare.append(old_conn)

    def release(self, slot: Slot) -> None:
        """The fork is closed: its connection becomes a spare for the next fork (a new
        connection parses the schema again: ~0.1-1 ms). Spares are kept up to the number of
        forks still open, at least `IDLE_SPARES`, at most `MAX_SPARE`: a run moves on from a
        domain's tasks, and spares kept after that are ~200 KB each held for nothing (a run
        over 500 domains once held 10,000 of them, 2 GB)."""
        self.forks -= 1
        conn = self._live.pop(slot, None)
        if conn is not None:
            self._spare.append(conn)
        while len(self._spare) > min(MAX_SPARE, max(self.forks, IDLE_SPARES)):
            self._spare.pop().close()

    @staticmethod
    def _park(slot: Slot, conn: sqlite3.Connection) -> None:
        if slot.dirty:
            slot.image = conn.serialize()
            slot.dirty = False

    @staticmethod
    def _connect() -> sqlite3.Connection:
        conn = sqlite3.connect(":memory:", check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.isolation_level = None  # explicit savepoints only
        conn.execute("PRAGMA recursive_triggers=ON")  # REPLACE must fire the state-hash triggers
        return conn


class MemoryDatabase:
    """An in-memory SQLite database driven on the event-loop thread (the session hot path)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        conn.row_factory = sqlite3.Row
        conn.isolation_level = None  # explicit savepoints only
        self._conn = conn

    async def fetch_one(self, stmt: Statement, params: Params = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._conn.execute(stmt.sql, params).fetchone()
        return row

    async def fetch_all(self, stmt: Statement, params: Params = ()) -> list[sqlite3.Row]:
        return self._conn.execute(stmt.sql, params).fetchall()

    async def execute(self, stmt: Statement, params: Params = ()) -> int:
        return self._conn.execute(stmt.sql, params).rowcount

    async def total_changes(self) -> int:
        return self._conn.total_changes

    def savepoint(self) -> _MemorySavepoint:
        return _MemorySavepoint(self._conn)


class _MemorySavepoint:
    """Commit on success, roll back on any exception (a class: it wraps every tool call)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def __aenter__(self) -> None:
        self._conn.execute(_SAVEPOINT)

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is not None:
            self._conn.execute(_ROLLBACK)
        self._conn.execute(_RELEASE)


class FileDatabase:
    """A database file on disk driven through aiosqlite's worker thread."""

    __slots__ = ("_conn",)

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    @classmethod
    async def open(cls, path: str) -> FileDatabase:
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        await conn.execute("PRAGMA recursive_triggers=ON")
        return cls(conn)

    async def fetch_one(self, stmt: Statement, params: Params = ()) -> sqlite3.Row | None:
        async with self._conn.execute(stmt.sql, params) as cur:
            row: sqlite3.Row | None = await cur.fetchone()
            return row

    async def fetch_all(self, stmt: Statement, params: Params = ()) -> list[sqlite3.Row]:
        async with self._conn.execute(stmt.sql, params) as cur:
            return list(await cur.fetchall())

    async def execute(self, stmt: Statement, params: Params = ()) -> int:
        async with self._conn.execute(stmt.sql, params) as cur:
            return cur.rowcount

    async def total_changes(self) -> int:
        return self._conn.total_changes

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        conn = self._conn
        await conn.execute(_SAVEPOINT)
        try:
            yield
        except BaseException:
            with anyio.CancelScope(shield=True):  # a cancelled call must still roll back
                await conn.execute(_ROLLBACK)
                await conn.execute(_RELEASE)
            raise
        await conn.execute(_RELEASE)

    async def close(self) -> None:
        await self._conn.close()
