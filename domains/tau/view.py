"""τ-bench's view of one of our vertical domains: its JSON structure and its data hash.

A domain is described by its collections (`collections.Collection`). The hash of a fork
re-renders only the records whose rows the fork changed (`Fork.changed_keys`): a row's first
key column is the id of the record it belongs to.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

from agentscaler.runtime import Environment, Fork

from .collections import Collection, Record, export
from .data_hash import DataHasher


class TauView:
    def __init__(self, collections: Sequence[Collection]) -> None:
        self.collections = {c.name: c for c in collections}
        self.owner = {t: c for c in collections for t in c.tables}
        self._hashers: weakref.WeakKeyDictionary[Environment, DataHasher] = (
            weakref.WeakKeyDictionary()
        )

    async def data(self, state: Fork) -> dict[str, dict[str, Record]]:
        """The fork's data in τ-bench's structure."""
        async with state.database() as db:
            return await export(db, list(self.collections.values()))

    async def _hasher(self, env: Environment) -> DataHasher:
        """The template's renderings, kept while the environment lives."""
        hasher = self._hashers.get(env)
        if hasher is None:
            async with env.fork() as fresh:
                hasher = self._hashers[env] = DataHasher(await self.data(fresh))
        return hasher

    async def data_hash(self, state: Fork) -> str:
        """τ-bench's hash of the fork's data, equal to `data_hash(await self.data(state))`."""
        hasher = await self._hasher(state.env)
        changed: dict[str, dict[str, Record | None]] = {}
        touched = await state.changed_keys()
        async with state.database() as db:
            for table, keys in touched.items():
                collection = self.owner[table]
                for key in keys:
                    record_id = key[0]
                    if record_id not in changed.setdefault(collection.name, {}):
                        found = await collection.record(db, record_id)
                        changed[collection.name][record_id] = found
        return hasher.hash(changed)
