"""Canonical state hash of a domain database, maintained incrementally.

Definition (stable across runs, processes and machines):

    row_digest   = blake2b-512(canonical JSON of the row: {column: value}, keys sorted, orjson)
    table_digest = sha256(sum of the table's row digests as integers, mod 2^512; 64 bytes)
    state_hash   = sha256(name_1 "\\0" table_digest_1 || name_2 "\\0" ...)   tables by name

Blobs are hex strings in the JSON. A row's JSON holds its primary key, so the multiset of row
digests determines the table; summing them (a multiset hash) lets a write update a table's
digest by subtracting the old row's digest and adding the new one, whatever the table's size.
(An earlier definition hashed the digests in key order: every hash after a write re-digested
the whole table, ~5 ms on τ-bench retail's 3,000-row tables.) Finding two different tables with
equal sums needs a generalized-birthday search over 512-bit values with millions of chosen rows.

Why per-row digests: a template's digests are computed once; a fork keeps only an overlay of
rows its writes touched, found through triggers that log (table, rowid) into
`_agentscaler_dirty`. Hashing after a few writes re-reads those rows alone.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from .sql import Database, Statement

DIRTY_TABLE = "_agentscaler_dirty"
Key = tuple[tuple[int, Any], ...]
Entry = tuple[Key, int]  # (the row's primary key, ranked for sorting; its digest as an integer)
_MOD = 1 << 512


def _rank(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, bytes(value))


def _json_default(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    raise TypeError(f"unhashable column value of type {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class TableLayout:
    """What the hasher needs to know of one table; its SQL is built once per table."""

    name: str
    columns: tuple[str, ...]
    pk_index: tuple[int, ...]  # positions of the primary-key columns in `columns`
    select_all: Statement
    select_dirty: Statement

    @classmethod
    def create(cls, name: str, columns: Sequence[str], pk: Sequence[str]) -> TableLayout:
        cols = ", ".join(f't."{c}"' for c in columns)
        return cls(
            name=name,
            columns=tuple(columns),
            pk_index=tuple(columns.index(c) for c in pk),
            select_all=Statement(f'SELECT rowid, rowid, {cols} FROM "{name}" AS t'),
            select_dirty=Statement(
                f"SELECT d.rid, t.rowid, {cols} FROM "
                f"(SELECT DISTINCT rid FROM {DIRTY_TABLE} WHERE tbl = ?) AS d "
                f'LEFT JOIN "{name}" AS t ON t.rowid = d.rid'
            ),
        )

    def triggers(self) -> list[str]:
        """DDL that logs every changed rowid of this table (for incremental hashing)."""
        n, log = self.name, f"INSERT INTO {DIRTY_TABLE} (tbl, rid) VALUES"
        return [
            f'CREATE TRIGGER "_as_ins_{n}" AFTER INSERT ON "{n}" BEGIN {log} (\'{n}\', NEW.rowid); END',
            f'CREATE TRIGGER "_as_upd_{n}" AFTER UPDATE ON "{n}" '
            f"BEGIN {log} ('{n}', OLD.rowid), ('{n}', NEW.rowid); END",
            f'CREATE TRIGGER "_as_del_{n}" AFTER DELETE ON "{n}" BEGIN {log} (\'{n}\', OLD.rowid); END',
        ]

    def key(self, row: sqlite3.Row | tuple[Any, ...]) -> Key:
        """Primary-key order of a row selected as (rowid, rowid, *columns)."""
        return tuple(_rank(row[2 + i]) for i in self.pk_index)

    def entry(self, row: sqlite3.Row | tuple[Any, ...]) -> Entry:
        """(sort key, digest) of a row selected as (rowid, rowid, *columns)."""
        values = tuple(row)[2:]
        key = self.key(row)
        doc = orjson.dumps(
            dict(zip(self.columns, values, strict=True)),
            option=orjson.OPT_SORT_KEYS,
            default=_json_default,
        )
        return key, int.from_bytes(hashlib.blake2b(doc).digest(), "big")


DIRTY_DDL = f"CREATE TABLE {DIRTY_TABLE} (tbl TEXT NOT NULL, rid INTEGER NOT NULL)"
_DIRTY_TABLES = Statement(f"SELECT DISTINCT tbl FROM {DIRTY_TABLE}")
_CLEAR_DIRTY = Statement(f"DELETE FROM {DIRTY_TABLE}")


def _sum_digest(total: int) -> bytes:
    return hashlib.sha256(total.to_bytes(64, "big")).digest()


def _row_sum(entries: Iterable[Entry]) -> int:
    return sum(d for _, d in entries) % _MOD


def _combine(layouts: Sequence[TableLayout], digests: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for layout in layouts:
        h.update(layout.name.encode())
        h.update(b"\0")
        h.update(digests[layout.name])
    return h.hexdigest()


async def _read_table(db: Database, layout: TableLayout) -> dict[int, Entry]:
    return {row[0]: layout.entry(row) for row in await db.fetch_all(layout.select_all)}


@dataclass(frozen=True, slots=True)
class HashBase:
    """Per-row digests of a template, shared read-only by every fork of it."""

    layouts: tuple[TableLayout, ...]  # sorted by name
    by_name: dict[str, TableLayout]
    rows: dict[str, dict[int, Entry]]
    sums: dict[str, int]
    digests: dict[str, bytes]
    state_hash: str

    @classmethod
    async def compute(cls, db: Database, layouts: Sequence[TableLayout]) -> HashBase:
        ordered = tuple(sorted(layouts, key=lambda t: t.name))
        rows = {t.name: await _read_table(db, t) for t in ordered}
        sums = {name: _row_sum(entries.values()) for name, entries in rows.items()}
        digests = {name: _sum_digest(total) for name, total in sums.items()}
        await db.execute(_CLEAR_DIRTY)
        by_name = {t.name: t for t in ordered}
        return cls(ordered, by_name, rows, sums, digests, _combine(ordered, digests))


class StateHasher:
    """The state hash of one fork: the template's digests plus an overlay of touched rows.

    `absorb` runs right after a call that changed the database (it reads the logged rows and
    clears the log); `state_hash` needs no database and re-digests only the touched tables.
    """

    __slots__ = ("_base", "_digests", "_hash", "_overlay", "_stale")

    def __init__(self, base: HashBase) -> None:
        self._base = base
        self._overlay: dict[str, dict[int, Entry | None]] = {}
        self._digests: dict[str, bytes] = {}
        self._stale: set[str] = set()
        self._hash = base.state_hash

    async def absorb(self, db: Database) -> None:
        """Move the rows logged as changed into the overlay."""
        for (name,) in await db.fetch_all(_DIRTY_TABLES):
            layout = self._base.by_name.get(name)
            if layout is None:
                continue
            overlay = self._overlay.setdefault(name, {})
            for row in await db.fetch_all(layout.select_dirty, (name,)):
                overlay[row[0]] = None if row[1] is None else layout.entry(row)
            self._stale.add(name)
        await db.execute(_CLEAR_DIRTY)

    def changed_keys(self) -> dict[str, set[tuple[Any, ...]]]:
        """Primary keys of the rows inserted, updated or deleted since the template, by table:
        a row's current key and, for a template row, its key in the template."""
        out: dict[str, set[tuple[Any, ...]]] = {}
        for name, overlay in self._overlay.items():
            base = self._base.rows[name]
            keys = out.setdefault(name, set())
            for rid, entry in overlay.items():
                for found in (entry, base.get(rid)):
                    if found is not None:
                        keys.add(tuple(value for _, value in found[0]))
        return out

    def state_hash(self) -> str:
        """The current hash, from the template's digests and the overlay."""
        if not self._stale:
            return self._hash
        for name in self._stale:
            base, total = self._base.rows[name], self._base.sums[name]
            for rid, entry in self._overlay[name].items():
                old = base.get(rid)
                if old is not None:
                    total -= old[1]
                if entry is not None:
                    total += entry[1]
            self._digests[name] = _sum_digest(total % _MOD)
        self._stale.clear()
        self._hash = _combine(self._base.layouts, {**self._base.digests, **self._digests})
        return self._hash


async def full_state_hash(db: Database, layouts: Sequence[TableLayout]) -> str:
    """The same hash recomputed from every row: the reference the incremental path must match."""
    ordered = sorted(layouts, key=lambda t: t.name)
    digests = {t.name: _sum_digest(_row_sum((await _read_table(db, t)).values())) for t in ordered}
    return _combine(ordered, digests)
