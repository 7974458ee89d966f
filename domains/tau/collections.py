"""τ-bench's top-level collections (users, orders, flights, ...) over our typed tables.

A collection is a parent table (one row per record, in τ-bench's order by rowid) and child
tables whose first key column is the parent's id and whose rows are ordered by a column (a
list's `position`). `build` turns a parent row and its children's rows into τ-bench's record.
Exporting a database and reading one record are the same for every vertical domain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentscaler.runtime import Database, Statement

Row = Mapping[str, Any]
Record = dict[str, Any]
Children = Mapping[str, Sequence[Row]]


@dataclass(frozen=True)
class Collection:
    name: str
    table: str
    key: str  # the parent's id column, also the first key column of every child table
    children: tuple[tuple[str, str], ...]  # (child table, column its rows are ordered by)
    build: Callable[[Row, Children], Record]
    _all: dict[str, Statement] = field(init=False, repr=False)
    _one: dict[str, Statement] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        order = {self.table: "rowid", **dict(self.children)}
        select = {t: f'SELECT * FROM "{t}"' for t in order}
        every = {t: Statement(f"{s} ORDER BY {self.key}, {order[t]}") for t, s in select.items()}
        every[self.table] = Statement(f"{select[self.table]} ORDER BY rowid")
        one = {
            t: Statement(f"{s} WHERE {self.key} = ? ORDER BY {order[t]}") for t, s in select.items()
        }
        object.__setattr__(self, "_all", every)
        object.__setattr__(self, "_one", one)

    @property
    def tables(self) -> list[str]:
        return [self.table, *(t for t, _ in self.children)]

    async def export(self, db: Database) -> dict[str, Record]:
        """Every record, in τ-bench's order, keyed by id."""
        grouped: dict[str, dict[str, list[Row]]] = {}
        for table, _ in self.children:
            by_parent = grouped[table] = {}
            for row in await db.fetch_all(self._all[table]):
                by_parent.setdefault(row[self.key], []).append(dict(row))
        return {
            row[self.key]: self.build(
                dict(row), {t: rows.get(row[self.key], []) for t, rows in grouped.items()}
            )
            for row in await db.fetch_all(self._all[self.table])
        }

    async def record(self, db: Database, record_id: str) -> Record | None:
        """One record by id, None when there is none."""
        found = await db.fetch_all(self._one[self.table], (record_id,))
        if not found:
            return None
        children = {
            t: [dict(r) for r in await db.fetch_all(self._one[t], (record_id,))]
            for t, _ in self.children
        }
        return self.build(dict(found[0]), children)


async def export(db: Database, collections: Sequence[Collection]) -> dict[str, dict[str, Record]]:
    return {c.name: await c.export(db) for c in collections}
