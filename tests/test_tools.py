"""Tool calls validate first, never raise, and write transactionally."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import Column, Integer, MetaData, Table
from sqlmodel import Field, SQLModel

from agentscaler.runtime import (
    Database,
    Domain,
    Environment,
    JsonSchemaArguments,
    Statement,
    Tool,
    ToolError,
    ToolErrorKind,
    UserError,
    tool,
)

pytestmark = pytest.mark.anyio


class Counter(SQLModel, table=True):
    __tablename__ = "tt_counter"
    name: str = Field(primary_key=True)
    value: int


class Bump(BaseModel):
    name: str
    by: int = 1


_BUMP = Statement("UPDATE tt_counter SET value = value + ? WHERE name = ?")
_GET = Statement("SELECT value FROM tt_counter WHERE name = ?")


@tool("write")
async def bump_then_refuse(db: Database, args: Bump) -> str:
    """Writes, then refuses: the write must be rolled back."""
    await db.execute(_BUMP, (args.by, args.name))
    raise ToolError("Error: refused after writing")


@tool("write")
async def bump_then_crash(db: Database, args: Bump) -> str:
    """Writes, then crashes: the write must be rolled back and the crash reported."""
    await db.execute(_BUMP, (args.by, args.name))
    return str(1 / 0)


@tool("read")
async def sneaky_read(db: Database, args: Bump) -> str:
    """A read tool that writes: refused and rolled back."""
    await db.execute(_BUMP, (args.by, args.name))
    return "ok"


@tool("write")
async def bump(db: Database, args: Bump) -> dict[str, Any]:
    """Adds to a counter."""
    await db.execute(_BUMP, (args.by, args.name))
    row = await db.fetch_one(_GET, (args.name,))
    return {"value": row[0] if row else None}


@pytest.fixture
async def counters() -> Environment:
    domain = Domain(
        name="counters",
        tables=[Counter],
        tools=[bump, bump_then_refuse, bump_then_crash, sneaky_read],
        seed={"tt_counter": [{"name": "a", "value": 1}]},
    )
    return await Environment.build(domain)


async def test_schema_comes_from_the_argument_model(env: Environment) -> None:
    """The JSON schema the agent sees is generated from the pydantic argument model."""
    schema = env.tools["place_order"].definition.parameters_json_schema
    assert schema["required"] == ["customer_id", "isbn", "quantity"]
    assert schema["properties"]["quantity"]["maximum"] == 10
    assert env.tools["place_order"].definition.description.startswith("Buy copies")


async def test_errors_are_observations(env: Environment) -> None:
    """Unknown tools, bad JSON and invalid arguments come back as typed error observations."""
    async with env.fork() as state:
        unknown = await state.call("drop_tables", {})
        bad_json = await state.call("get_order", '{"order_id": ')
        invalid = await state.call("place_order", {"customer_id": "cus_ada", "isbn": 1})
    assert unknown.error is ToolErrorKind.UNKNOWN_TOOL and "get_order" in unknown.content
    assert bad_json.error is ToolErrorKind.INVALID_JSON
    assert invalid.error is ToolErrorKind.INVALID_ARGUMENTS
    assert "isbn: Input should be a valid string (got 1)" in invalid.content
    assert "quantity: Field required" in invalid.content


async def test_domain_error_keeps_its_text(env: Environment) -> None:
    """A ToolError's message is the observation, verbatim."""
    async with env.fork() as state:
        obs = await state.call("get_order", {"order_id": 99})
    assert (obs.error, obs.content) == (ToolErrorKind.TOOL_ERROR, "Error: order 99 not found")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("bump_then_refuse", ToolErrorKind.TOOL_ERROR),
        ("bump_then_crash", ToolErrorKind.EXECUTION_ERROR),
        ("sneaky_read", ToolErrorKind.READ_ONLY_VIOLATION),
    ],
)
async def test_failed_calls_leave_the_database_unchanged(
    counters: Environment, name: str, kind: ToolErrorKind
) -> None:
    """A call that fails after writing is rolled back: rows and state hash are as before."""
    async with counters.fork() as state:
        before = await state.state_hash()
        obs = await state.call(name, {"name": "a", "by": 5})
        assert obs.error is kind and not obs.changed
        assert await state.rows("tt_counter") == [{"name": "a", "value": 1}]
        assert await state.state_hash() == before == counters.initial_hash
        ok = await state.call("bump", {"name": "a"})
        assert ok.ok and ok.changed and ok.content == '{"value":2}'
        assert await state.state_hash() != before


async def test_a_rolled_back_call_on_a_reused_connection_keeps_the_schema(
    counters: Environment,
) -> None:
    """A fork's first call runs on a connection an earlier fork used, with that fork's cached
    statement, and is rolled back: the fork still sees its tables. (SQLite 3.40 loses the
    schema here unless it is loaded when the fork's image is deserialized.)"""
    async with counters.fork() as first:
        assert (await first.call("bump", {"name": "a"})).ok
    async with counters.fork() as second:
        refused = await second.call("bump_then_refuse", {"name": "a"})
        assert refused.error is ToolErrorKind.TOOL_ERROR
        after = await second.call("bump", {"name": "a"})
        assert after.ok, after.content
        assert after.content == '{"value":2}'


async def test_bad_tool_definitions_are_rejected() -> None:
    """A tool without a typed args model, or a domain with duplicate tools, is a UserError."""
    with pytest.raises(UserError, match="expected `async def"):

        @tool("read")
        async def untyped(db: Database, args: dict[str, Any]) -> str:
            return ""

    with pytest.raises(UserError, match="duplicate tool names"):
        await Environment.build(Domain(name="d", tables=[Counter], tools=[bump, bump]))


async def test_bad_seed_row_names_table_row_and_field() -> None:
    """Seed rows are validated by the table model; the error says where."""
    domain = Domain(
        name="counters",
        tables=[Counter],
        tools=[bump],
        seed={"tt_counter": [{"name": "a", "value": 1}, {"name": "b", "value": "many"}]},
    )
    with pytest.raises(UserError, match=r"table 'tt_counter', seed row 1: field 'value'"):
        await Environment.build(domain)


_TYPO = Statement("SELECT valeu FROM tt_counter WHERE name = ?")


async def _lookup(db: Database, name: str) -> Any:
    return await db.fetch_one(_TYPO, (name,))


@tool("read")
async def typo(db: Database, args: Bump) -> str:
    """Uses a statement through a helper; the statement has a typo."""
    return str(await _lookup(db, args.name))


async def test_sql_is_compiled_at_build_time() -> None:
    """Every Statement a tool reaches (through helpers too) is compiled when the domain builds."""
    assert typo.statements == (_TYPO,)
    with pytest.raises(UserError, match=r"tool 'typo': SQL does not compile \(no such column"):
        await Environment.build(Domain(name="d", tables=[Counter], tools=[bump, typo]))


async def test_openai_schema_is_the_chat_completions_tool_entry(env: Environment) -> None:
    """What exporters put in a dataset's `tools` column: OpenAI's function-tool shape."""
    entry = env.tools["get_order"].openai_schema()
    assert entry["type"] == "function"
    assert entry["function"]["name"] == "get_order"
    assert entry["function"]["parameters"]["required"] == ["order_id"]


_PLAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "enum": ["Paris", "Rome"]},
        "days": {"type": "integer"},
        "budget": {"type": "number"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "note": {"type": ["string", "null"]},
    },
    "required": ["city"],
}


async def _echo(db: Database, args: dict[str, Any]) -> dict[str, Any]:
    return args


def _core_domain(seed: list[dict[str, Any]]) -> Domain:
    """A domain whose table is SQLAlchemy Core and whose tool exists only as a JSON Schema."""
    note = Table(
        "note", MetaData(), Column("note_id", Integer, primary_key=True), Column("n", Integer)
    )
    plan = Tool("plan", "Plans a trip.", JsonSchemaArguments(_PLAN_SCHEMA), "read", _echo)
    return Domain(name="core", tables=[note], tools=[plan], seed={"note": seed})


async def test_json_schema_tools_validate_against_their_own_schema() -> None:
    """The agent sees the spec's schema unchanged; arguments are coerced as pydantic would and
    checked for required, enum, type and unknown names, with pydantic's error observations."""
    env = await Environment.build(_core_domain([{"note_id": 1, "n": 2}]))
    assert env.tools["plan"].definition.parameters_json_schema == _PLAN_SCHEMA
    async with env.fork() as state:
        ok = await state.call("plan", {"city": "Rome", "days": "3", "note": None, "budget": 150})
        assert ok.ok and ok.content == '{"city":"Rome","days":3,"budget":150,"note":null}'
        cases = {
            "city: Field required": {"days": 1},
            "city: Input should be 'Paris' or 'Rome'": {"city": "Oslo"},
            "days: Input should be a valid integer": {"city": "Rome", "days": "three"},
            "tags.0: Input should be a valid string": {"city": "Rome", "tags": [1]},
            "hotel: Extra inputs are not permitted": {"city": "Rome", "hotel": "x"},
        }
        for message, arguments in cases.items():
            obs = await state.call("plan", arguments)
            assert obs.error is ToolErrorKind.INVALID_ARGUMENTS
            assert message in obs.content, obs.content
        bad_json = await state.call("plan", '{"city": "Rome"')
        assert bad_json.error is ToolErrorKind.INVALID_JSON


async def test_core_table_seed_rows_are_checked_by_column_type() -> None:
    """Rows of a Core table are validated against its column types, with the same error."""
    with pytest.raises(UserError, match=r"table 'note', seed row 1: field 'n'"):
        await Environment.build(_core_domain([{"note_id": 1, "n": 2}, {"note_id": 2, "n": "x"}]))
    with pytest.raises(UserError, match=r"seed row 0: field 'note_id': Field required"):
        await Environment.build(_core_domain([{"n": 2}]))
