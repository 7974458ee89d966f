"""τ²-bench's telecom domain on our runtime, dual control: `telecom()` is the agent's side (the
carrier's database, 13 tools, the policy), `telecom_user()` the user's phone (30 tools), whose
state follows the agent's database through `sync` after every successful call.

`agent_dump` / `user_dump` give τ²'s `model_dump()` of either side and `tau2_hash` its hash.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from agentscaler.domains.tau.collections import Record
from agentscaler.runtime import Database, Domain, Fork

from . import records, tools, user_tools
from .calls import tool_not_found
from .records import Phone, tau2_hash
from .sync import sync
from .tables import AGENT_TABLES, PHONE_TABLES

DATA = Path(__file__).parent / "data"

__all__ = [
    "DATA",
    "agent_dump",
    "policy",
    "sync",
    "tau2_hash",
    "telecom",
    "telecom_user",
    "user_dump",
]


def policy() -> str:
    """What τ² gives the agent: the main policy and the tech support manual, tagged."""
    main = (DATA / "main_policy.md").read_text()
    manual = (DATA / "tech_support_manual.md").read_text()
    return (
        f"<main_policy>\n{main}\n</main_policy>\n"
        f"<tech_support_policy>\n{manual}\n</tech_support_policy>"
    )


def _environment_functions(
    functions: Mapping[str, Callable[..., Awaitable[Any]]],
) -> dict[str, Callable[[Database, dict[str, Any]], Awaitable[Any]]]:
    """τ²'s toolkit functions (tools and the set-ups and checks that are not tools) as the
    runtime's environment functions, which take their arguments as one dict."""

    def bound(
        fn: Callable[..., Awaitable[Any]],
    ) -> Callable[[Database, dict[str, Any]], Awaitable[Any]]:
        async def call(db: Database, args: dict[str, Any]) -> Any:
            return await fn(db, **args)

        return call

    return {name: bound(fn) for name, fn in functions.items()}


def telecom() -> Domain:
    return Domain(
        name="telecom",
        tables=AGENT_TABLES,
        tools=tools.tools(),
        unknown_tool=tool_not_found,
        policy=policy(),
        seed=records.agent_seed(DATA / "db.toml"),
        functions=_environment_functions(tools.FUNCTIONS),
    )


def telecom_user() -> Domain:
    return Domain(
        name="telecom_user",
        tables=PHONE_TABLES,
        tools=user_tools.tools(),
        unknown_tool=tool_not_found,
        seed=records.phone_seed(DATA / "user_db.toml"),
        sync_from_agent=sync,
        functions=_environment_functions(user_tools.FUNCTIONS),
    )


async def agent_dump(state: Fork) -> dict[str, list[Record]]:
    async with state.database() as db:
        return await records.export_agent(db)


async def user_dump(state: Fork) -> Record:
    async with state.database() as db:
        return (await Phone.load(db)).dump()
