"""τ-bench's airline domain: lossless data, its tools' exact observations, its data hash."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from agentscaler.domains.airline import AIRLINE_VIEW, DATA, airline, source_data
from agentscaler.domains.tau.data_hash import data_hash
from agentscaler.domains.tau.tasks import load_tau_tasks, replay_record
from agentscaler.runtime import Environment

pytestmark = pytest.mark.anyio
DERIVED = Path(__file__).parent / "data" / "derived"
REPLAY = DERIVED / "tau-bench_airline_probe_replay.jsonl"
PROBES = DERIVED / "tau-bench_airline_probe_tasks.jsonl"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def env() -> Environment:
    return await Environment.build(airline())


async def test_export_gives_back_the_source_json_byte_for_byte(env: Environment) -> None:
    async with env.fork() as state:
        exported = await AIRLINE_VIEW.data(state)
        assert (
            await AIRLINE_VIEW.data_hash(state)
            == orjson.loads(REPLAY.read_bytes().splitlines()[0])["initial_data_hash"]
        )
    for name, source in source_data().items():
        assert json.dumps(exported[name]) == json.dumps(source), name


async def test_agent_sees_the_policy(env: Environment) -> None:
    assert env.domain.policy == (DATA / "policy.md").read_text()


async def test_agent_sees_tau_bench_tools(env: Environment) -> None:
    upstream = orjson.loads((DATA / "tools.json").read_bytes())
    assert [t.openai_schema() for t in env.tools.values()] == upstream


async def test_probe_replay_reproduces_every_upstream_observation_and_hash(
    env: Environment,
) -> None:
    """All 240 probe tasks (random valid and invalid calls of every tool): each observation,
    τ-bench's quirks included, and each final data hash equal τ-bench's own."""
    expected = {r["task_index"]: r for r in map(orjson.loads, REPLAY.read_bytes().splitlines())}
    tasks = load_tau_tasks(PROBES, "airline", "probe")
    assert len(tasks) == len(expected) == 240
    names = set()
    for task in tasks:
        got = await replay_record(env, AIRLINE_VIEW, task)
        assert got == expected[got["task_index"]], task.id
        names |= {c.name for c in task.gold_calls}
    assert names == set(env.tools)  # every tool is exercised


async def test_bad_calls_read_as_in_tau_bench(env: Environment) -> None:
    """τ-bench calls `invoke(data, **arguments)` unvalidated: a misnamed or missing argument
    reads Python's TypeError text, a wrong type whatever the tool's code raised."""
    async with env.fork() as state:
        cases = {
            ("get_user_details", '{"user_id": "mia_li_3668", "foo": 1}'): (
                "Error: GetUserDetails.invoke() got an unexpected keyword argument 'foo'"
            ),
            ("get_user_details", "{}"): (
                "Error: GetUserDetails.invoke() missing 1 required positional argument: 'user_id'"
            ),
            ("update_reservation_baggages", '{"reservation_id": "4WQ150"}'): (
                "Error: UpdateReservationBaggages.invoke() missing 3 required positional "
                "arguments: 'total_baggages', 'nonfree_baggages', and 'payment_id'"
            ),
            ("get_reservation_details", '{"reservation_id": 7}'): "Error: user not found",
            ("rebook_everything", "{}"): "Unknown action rebook_everything",
        }
        for (name, arguments), expected in cases.items():
            obs = await state.call(name, arguments)
            assert obs.content == expected
        assert await state.state_hash() == env.initial_hash


async def test_caller_dicts_are_stored_as_they_came(env: Environment) -> None:
    """τ-bench stores the caller's flight, passenger and payment dicts unvalidated: an extra key,
    a missing one and a number where text was meant all read back as sent."""
    args = {
        "user_id": "mia_li_3668",
        "origin": "PHL",
        "destination": "LGA",
        "flight_type": "one_way",
        "cabin": "business",
        "flights": [{"date": "2024-05-20", "flight_number": "HAT001", "cabin": "business"}],
        "passengers": [{"first_name": "Mia", "last_name": 7}],
        "payment_methods": [{"payment_id": "credit_card_4421486", "amount": 0}],
        "total_baggages": 0,
        "nonfree_baggages": 0,
        "insurance": "no",
    }
    async with env.fork() as state:
        refused = await state.call("book_reservation", args)
        price = int(refused.content.split("total price is ")[1].split(",")[0])
        args["payment_methods"][0]["amount"] = price
        booked = await state.call("book_reservation", args)
        assert booked.ok, booked.content
        shown = await state.call("get_reservation_details", {"reservation_id": "HATHAT"})
        assert shown.content == booked.content
        record = json.loads(shown.content)
        assert list(record["flights"][0]) == [
            "date",
            "flight_number",
            "cabin",
            "price",
            "origin",
            "destination",
        ]
        assert record["passengers"] == [{"first_name": "Mia", "last_name": 7}]
        assert await AIRLINE_VIEW.data_hash(state) == data_hash(await AIRLINE_VIEW.data(state))
