"""τ-bench's view of one of our vertical domains: its JSON structure and its data hash.

A domain supplies three things: `export` (the whole database as τ-bench's JSON), `record` (one
top-level record by collection and id, None if absent) and `owner` (table -> the collection
whose records its rows belong to; a row's first key column is the record id). The hash of a
fork re-renders only the records whose rows the fork changed (`Fork.changed_keys`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agentscaler.runtime import Database, Environment, Fork

from .data_hash import DataHasher

Record = dict[str, Any]


@dataclass
class TauView:
    export: Callable[[Database], Awaitable[dict[str, dict[str, Record]]]]
    record: Mapping[str, Callable[[Database, str], Awaitable[Record | None]]]
    owner: Mapping[str, str]
    _hashers: dict[int, tuple[Environment, DataHasher]] = field(default_factory=dict)

    async def data(self, state: Fork) -> dict[str, dict[str, Record]]:
        async with state.database() as db:
            return await self.export(db)

    async def _hasher(self, env: Environment) -> DataHasher:
        cached = self._hashers.get(id(env))
        if cached is None or cached[0] is not env:
            async with env.fork() as fresh:
                cached = (env, DataHasher(await self.data(fresh)))
            self._hashers[id(env)] = cached
        return cached[1]

    async def data_hash(self, state: Fork) -> str:
        """τ-bench's hash of the fork's data, equal to `data_hash(await self.data(state))`."""
        hasher = await self._hasher(state.env)
        changed: dict[str, dict[str, Record | None]] = {}
        touched = await state.changed_keys()  # before borrowing the database: no nesting
        async with state.database() as db:
            for table, keys in touched.items():
                collection = self.owner[table]
                for key in keys:
                    record_id = str(key[0])
                    if record_id not in changed.setdefault(collection, {}):
                        changed[collection][record_id] = await self.record[collection](
                            db, record_id
                        )
        return hasher.hash(changed)
