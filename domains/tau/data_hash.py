"""τ-bench's data hash, computed the way its envs/base.py does, plus a cached form.

τ-bench hashes `sha256(str(to_hashable(data)))`: dicts become tuples of (key, value) sorted by
key, lists tuples in order. `str()` of the whole database costs ~100 ms; `DataHasher` keeps the
rendering of each top-level record (a user, an order, a product) and re-renders only the
records a session changed, producing the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any


def to_hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, to_hashable(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(to_hashable(v) for v in value)
    return value


def data_hash(data: Mapping[str, Any]) -> str:
    """The reference: exactly τ-bench's computation."""
    return hashlib.sha256(str(to_hashable(dict(data))).encode()).hexdigest()


Records = Mapping[str, Mapping[str, Any]]  # collection -> record id -> record


def _pieces(records: Mapping[str, Any]) -> dict[str, str]:
    return {k: str((k, to_hashable(v))) for k, v in records.items()}


def _joined(pieces: Mapping[str, str]) -> str:
    """`str()` of a tuple of the pieces' tuples, in key order (a 1-tuple keeps its comma)."""
    parts = [pieces[k] for k in sorted(pieces)]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


class DataHasher:
    """τ-bench's hash of a database whose collections map record ids to records."""

    def __init__(self, data: Records) -> None:
        self._pieces = {name: _pieces(records) for name, records in data.items()}

    def hash(self, changed: Mapping[str, Mapping[str, Mapping[str, Any] | None]]) -> str:
        """The hash after `changed` (collection -> record id -> new record, None if deleted)."""
        top: dict[str, str] = {}
        for name, pieces in self._pieces.items():
            updates = changed.get(name)
            if updates:
                pieces = dict(pieces)
                for key, record in updates.items():
                    if record is None:
                        pieces.pop(key, None)
                    else:
                        pieces[key] = str((key, to_hashable(dict(record))))
            top[name] = f"({name!r}, {_joined(pieces)})"
        return hashlib.sha256(_joined(top).encode()).hexdigest()
