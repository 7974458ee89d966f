"""Forks are isolated copies; the state hash is canonical, stable and incremental."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table
from sqlmodel import Field, SQLModel

from agentscaler.runtime import ClosedError, Domain, Environment, Statement, UserError

pytestmark = pytest.mark.anyio

# The bookstore template's hash, pinned: it must not change across runs, processes or machines.
BOOKSTORE_HASH = "76d0eda801577d8aa798f37b513ae58643e0cb5d1f1c283868d50ff6fedd0510"


async def test_fork_isolation(env: Environment) -> None:
    """A write in one fork is never seen in another fork or in the template."""
    async with env.fork() as a, env.fork() as b:
        obs = await a.call("update_email", {"customer_id": "cus_ada", "email": "new@example.com"})
        assert obs.ok and obs.changed
        emails_a = {r["id"]: r["email"] for r in await a.rows("customer")}
        emails_b = {r["id"]: r["email"] for r in await b.rows("customer")}
        assert emails_a["cus_ada"] == "new@example.com"
        assert emails_b["cus_ada"] == "ada@example.com"
        assert await b.state_hash() == env.initial_hash != await a.state_hash()
    async with env.fork() as c:
        assert {r["id"]: r["email"] for r in await c.rows("customer")}[
            "cus_ada"
        ] == "ada@example.com"


async def test_hash_is_pinned_and_stable_across_processes(env: Environment) -> None:
    """Same data, same hash: in this process, in a fresh interpreter, and as pinned above."""
    code = (
        "import anyio\n"
        "from agentscaler.runtime import Environment\n"
        "from agentscaler.runtime.example import bookstore\n"
        "print(anyio.run(Environment.build, bookstore()).initial_hash)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123"},
    )
    assert env.initial_hash == out.stdout.strip() == BOOKSTORE_HASH
    async with env.fork() as state:
        assert await state.full_state_hash() == BOOKSTORE_HASH


class Item(SQLModel, table=True):
    __tablename__ = "te_item"
    shelf: str = Field(primary_key=True)
    slot: int = Field(primary_key=True)
    label: str | None = None
    weight: float = 0.0
    blob: bytes | None = None


_INSERT = Statement("INSERT INTO te_item (shelf, slot, label, weight, blob) VALUES (?, ?, ?, ?, ?)")
_REPLACE = Statement(
    "INSERT OR REPLACE INTO te_item (shelf, slot, label, weight, blob) VALUES (?, ?, ?, ?, ?)"
)
_UPDATE = Statement("UPDATE te_item SET label = ?, weight = weight + 0.5 WHERE shelf = ?")
_MOVE = Statement("UPDATE OR IGNORE te_item SET slot = slot + 100 WHERE shelf = ? AND slot = ?")
_DELETE = Statement("DELETE FROM te_item WHERE shelf = ? AND slot < ?")


async def test_incremental_hash_equals_full_recomputation() -> None:
    """After random inserts, REPLACEs, updates, key changes and deletes (with hashes taken in
    between), the incremental hash always equals a recomputation from every row."""
    rng = random.Random(7)
    seed = [
        {"shelf": s, "slot": i, "label": f"{s}{i}", "weight": i / 3, "blob": bytes([i])}
        for s in "abc"
        for i in range(20)
    ]
    env = await Environment.build(
        Domain(name="items", tables=[Item], tools=[], seed={"te_item": seed})
    )
    async with env.fork() as state:
        seen = {await state.state_hash()}
        for step in range(300):
            shelf, slot = rng.choice("abcd"), rng.randrange(130)
            row = (shelf, slot, rng.choice([None, "x", "é", "😀"]), rng.random(), rng.randbytes(3))
            op = rng.randrange(5)
            async with state.database() as db:
                if op == 0:
                    await db.execute(_REPLACE, row)
                elif op == 1:
                    await db.execute(_UPDATE, (row[2], shelf))
                elif op == 2:
                    await db.execute(_MOVE, (shelf, slot))
                elif op == 3:
                    await db.execute(_DELETE, (shelf, rng.randrange(5)))
                else:
                    async with db.savepoint():
                        await db.execute(_REPLACE, row)
            if step % rng.choice([1, 3, 7]) == 0:
                incremental = await state.state_hash()
                assert incremental == await state.full_state_hash(), step
                seen.add(incremental)
        assert await state.state_hash() == await state.full_state_hash()
        assert len(seen) > 50  # the hash really moves with the data


async def test_rolled_back_savepoint_leaves_hash(env: Environment) -> None:
    """Writes rolled back by a savepoint leave no trace in the hash."""
    async with env.fork() as state:
        with pytest.raises(RuntimeError):
            async with state.database() as db, db.savepoint():
                await db.execute(Statement("DELETE FROM book_order"))
                raise RuntimeError("abort")
        assert await state.state_hash() == env.initial_hash == await state.full_state_hash()


async def test_file_fork_through_aiosqlite_matches_memory(env: Environment, tmp_path: Path) -> None:
    """A file-backed fork (aiosqlite) gives the same observations and hashes as a memory fork."""
    calls = [
        ("cancel_order", {"order_id": 1}),
        ("place_order", {"customer_id": "cus_ada", "isbn": "978-0262033848", "quantity": 1}),
        ("place_order", {"customer_id": "cus_ada", "isbn": "978-0262033848", "quantity": 9}),
        ("get_order", {"order_id": 4}),
    ]
    memory = await env.replay(calls)
    async with await env.fork_file(tmp_path / "fork.sqlite") as disk:
        observations = [await disk.call(n, a) for n, a in calls]
        assert [o.content for o in observations] == [o.content for o in memory.observations]
        assert await disk.state_hash() == memory.final_hash == await disk.full_state_hash()


@pytest.mark.parametrize("max_live", [None, 1, 2])
async def test_parked_forks_keep_their_own_writes(max_live: int | None) -> None:
    """With fewer live connections than forks, idle forks are parked and restored: each one
    still sees exactly its own writes, and its hash matches a full recomputation."""
    from agentscaler.runtime.example import bookstore

    env = await Environment.build(bookstore(), max_live_connections=max_live)
    forks = [env.fork() for _ in range(4)]
    for round_ in range(3):
        for i, state in enumerate(forks):
            email = f"r{round_}-f{i}@example.com"
            obs = await state.call("update_email", {"customer_id": "cus_ada", "email": email})
            assert obs.ok
    for i, state in enumerate(forks):
        rows = {r["id"]: r["email"] for r in await state.rows("customer")}
        assert rows["cus_ada"] == f"r2-f{i}@example.com"
        assert await state.state_hash() == await state.full_state_hash()
        await state.aclose()
    async with env.fork() as fresh:  # a reused connection starts from the template again
        assert await fresh.full_state_hash() == env.initial_hash
        assert {r["id"]: r["email"] for r in await fresh.rows("customer")}[
            "cus_ada"
        ] == "ada@example.com"


async def test_closed_fork_refuses_use(env: Environment) -> None:
    """A fork used after close fails loudly."""
    state = env.fork()
    await state.aclose()
    with pytest.raises(ClosedError):
        await state.call("get_order", {"order_id": 1})
    with pytest.raises(ClosedError):
        await state.state_hash()


async def test_a_column_that_hides_rowid_is_refused() -> None:
    """State hashing tracks rows by SQLite's rowid; a column named rowid would hide it."""
    table = Table(
        "t", MetaData(), Column("t_id", Integer, primary_key=True), Column("RowId", Integer)
    )
    with pytest.raises(UserError, match="column 'RowId' would hide SQLite's rowid"):
        await Environment.build(Domain(name="d", tables=[table], tools=[]))


async def test_nested_database_use_sees_the_same_connection(env: Environment) -> None:
    """A `database()` opened inside another (a helper that hashes while holding the database)
    works on the fork's live data, not on a stale copy of its last parked image."""
    async with env.fork() as state:
        assert (
            await state.call(
                "place_order", {"customer_id": "cus_ada", "isbn": "978-0262033848", "quantity": 1}
            )
        ).ok
        count = Statement('SELECT COUNT(*) FROM "book_order"')
        async with state.database() as outer:
            keys = await state.changed_keys()  # absorbs through a nested database()
            async with state.database() as inner:
                seen_inside = (await inner.fetch_all(count))[0][0]
            seen_outside = (await outer.fetch_all(count))[0][0]
        async with env.fork() as fresh, fresh.database() as template:
            before = (await template.fetch_all(count))[0][0]
        assert seen_inside == seen_outside == before + 1
        assert len(keys["book_order"]) == 1  # the new order (stock and balance changed too)
        assert await state.state_hash() == await state.full_state_hash()
        assert await state.state_hash() != env.initial_hash


async def test_closed_forks_do_not_keep_connections(env: Environment) -> None:
    """A run moves on from a domain: once its forks are closed, only two of their connections
    stay open for its next sessions (a 500-domain run once kept 10,000 spares, 2 GB)."""
    forks = [env.fork() for _ in range(100)]
    for fork in forks:
        assert (await fork.call("get_order", {"order_id": 1})).ok
    assert env.connections.held <= 65  # the live bound for a small domain, and one spare
    for fork in forks[:90]:
        await fork.aclose()
    assert env.connections.held <= 64
    for fork in forks[90:]:
        await fork.aclose()
    assert env.connections.held == 2
