"""Typed, realistic seed rows for a DomainSpec, consistent with foreign keys.

Realistic text comes from Faker, drawn once per process into fixed pools (Faker itself seeded
per provider, so every process draws the same pools); each domain then picks from them with its
own seeded `random.Random`. Calling Faker per cell cost ~50 us, a third of building a domain
(measured); a pick costs well under 1 us, and the rows stay a function of the spec's seed.
"""

from __future__ import annotations

import random
import zlib
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from faker import Faker

from .spec import PYTHON_TYPES, ColumnSpec, DomainSpec, TableSpec

POOL_SIZE = 512  # distinct values per provider
_BY_NAME = {  # column-name hints -> a Faker provider
    "email": "email",
    "name": "name",
    "first_name": "first_name",
    "last_name": "last_name",
    "city": "city",
    "country": "country",
    "address": "street_address",
    "zip": "postcode",
    "phone": "phone_number",
    "url": "url",
    "date": "date",
    "time": "time",
    "title": "sentence",
    "description": "sentence",
    "company": "company",
    "currency": "currency_code",
    "language": "language_name",
    "username": "user_name",
    "status": "word",
}


# Faker's dates and times run up to "now" unless told otherwise: pin the end, so the pools (and
# every gold hash built on them) do not change from one second to the next.
_UNTIL_NOW = frozenset({"date", "time"})
_UNTIL = {"end_datetime": datetime(2030, 1, 1, tzinfo=UTC)}


@cache
def _faker() -> Faker:
    from faker import Faker  # imported and loaded (~1 s) only when a domain needs text

    return Faker()


@cache
def pool(provider: str) -> tuple[str, ...]:
    """POOL_SIZE values of one Faker provider, the same in every process."""
    fake = _faker()
    fake.seed_instance(zlib.crc32(provider.encode()))
    make = getattr(fake, provider)
    kwargs = _UNTIL if provider in _UNTIL_NOW else {}
    return tuple(str(make(**kwargs)) for _ in range(POOL_SIZE))


def _value(rng: random.Random, column: ColumnSpec) -> Any:
    if column.enum:
        return rng.choice(column.enum)
    words = column.name.split("_")
    for hint in (column.name, words[-1], words[0]):
        if hint in _BY_NAME and column.type == "string":
            return rng.choice(pool(_BY_NAME[hint]))
    if column.type == "integer":
        return rng.randint(0, 1000)
    if column.type == "number":
        return round(rng.uniform(0, 1000), 2)
    if column.type == "boolean":
        return rng.random() < 0.5
    if column.type == "json":
        return orjson.dumps([rng.choice(pool("word"))]).decode()
    return rng.choice(pool("word"))


def _order(tables: list[TableSpec]) -> list[TableSpec]:
    """Referenced tables first (cycles broken by name order)."""
    done: list[TableSpec] = []
    pending = sorted(tables, key=lambda t: t.name)
    while pending:
        ready = [
            t
            for t in pending
            if all(c.references in {d.name for d in done} | {t.name, None} for c in t.columns)
        ]
        nxt = ready[0] if ready else pending[0]
        done.append(nxt)
        pending.remove(nxt)
    return done


def seed_rows(spec: DomainSpec) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(f"{spec.name}/{spec.seed}")
    rows: dict[str, list[dict[str, Any]]] = {}
    for table in _order(spec.tables):
        pk_type = table.columns[0].type
        parent_keys = {}  # column -> the referenced table's keys, when the id types agree
        for column in table.columns[1:]:
            parents = rows.get(column.references or "")
            key = f"{column.references}_id"
            if parents and type(parents[0][key]) is PYTHON_TYPES[column.type]:
                parent_keys[column.name] = [r[key] for r in parents]
        out = []
        for i in range(spec.rows_per_table):
            row: dict[str, Any] = {
                table.primary_key: i + 1 if pk_type == "integer" else f"{table.name}_{i + 1:04d}"
            }
            for column in table.columns[1:]:
                keys = parent_keys.get(column.name)
                row[column.name] = rng.choice(keys) if keys else _value(rng, column)
            out.append(row)
        rows[table.name] = out
    return rows
