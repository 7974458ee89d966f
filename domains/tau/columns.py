"""Column types for data that must round-trip to τ-bench's JSON byte for byte."""

from __future__ import annotations

from typing import Any

from sqlalchemy.types import UserDefinedType


class Number(UserDefinedType[Any]):
    """A JSON scalar kept as given. SQLite stores a value by its column's affinity: NUMERIC would
    turn a gift card balance of 100.0 into 100, REAL would turn 100 into 100.0, TEXT a zip code
    passed as 12345 into "12345", and τ-bench's hash (and its JSON) tells them apart. A
    BLOB-affinity column stores a Python int as INTEGER, a float as REAL, a str as TEXT."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "BLOB"
