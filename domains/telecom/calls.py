"""How τ²-bench calls a telecom tool and renders what it returns.

τ² calls the toolkit's method with the JSON arguments as keyword arguments, unvalidated: a
misnamed or missing argument reads as Python's TypeError (`TelecomTools.refuel_data() missing 1
required positional argument: 'gb_amount'`), any failure as "Error: {exception}". A result that
is not a string is rendered by its `to_json_str`: models as their dump, but numbers and bools
sitting directly in a returned dict or list as `str()` ("2.0", "True").
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from agentscaler.domains.tau.tools import Args, invoked
from agentscaler.domains.tau.tools import Implementation as TauImplementation
from agentscaler.runtime import Database, JsonSchemaArguments, Tool

# An implementation takes the database and the call's arguments as keyword arguments.
Implementation = Callable[..., Awaitable[Any]]
TOOLS_JSON = Path(__file__).parent / "data" / "tools.json"


class Model(dict[str, Any]):
    """A record τ² returns as a pydantic model: rendered as its dump, contents untouched."""


def _converted(value: Any) -> Any:
    if isinstance(value, Model | str) or value is None:
        return value
    if isinstance(value, int | float):  # bool included
        return str(value)
    if isinstance(value, list | tuple):
        return [_converted(v) for v in value]
    if isinstance(value, dict):
        return {k: _converted(v) for k, v in value.items()}
    if isinstance(value, date):
        return value.isoformat()
    return value


def to_json_str(value: Any) -> str:
    """τ²'s observation text of a tool's return value."""
    if isinstance(value, str):
        return value
    return json.dumps(_converted(value), default=str)


def tool_not_found(name: str) -> str:
    """τ²'s observation for a name that is not a tool of the toolkit called."""
    return f"Error: Tool '{name}' not found."


def _rendered(fn: Implementation) -> TauImplementation:
    """`fn(db, **arguments)` with its result rendered as τ² renders it."""

    @functools.wraps(fn)  # keeps the module: the build finds the tool's SQL through it
    async def call(db: Database, args: Args) -> str:
        return to_json_str(await fn(db, **args))

    return call


def upstream_tools(side: str) -> list[dict[str, Any]]:
    """τ²'s tool entries of one side ("agent" or "user"): OpenAI schema, tool type."""
    entries: list[dict[str, Any]] = orjson.loads(TOOLS_JSON.read_bytes())[side]
    return entries


def load_tools(
    side: str, owner: str, implementations: Mapping[str, Implementation]
) -> list[Tool[Args]]:
    """τ²'s tools of one side, in its order, each with its name, description and schema."""
    tools = []
    for entry in upstream_tools(side):
        spec = entry["schema"]["function"]
        name, parameters = spec["name"], spec["parameters"]
        tools.append(
            Tool(
                name=name,
                description=spec["description"],
                args=JsonSchemaArguments(parameters, validate=False),
                kind="write" if entry["tool_type"] == "write" else "read",
                fn=invoked(
                    f"{owner}.{name}()",
                    list(parameters.get("properties", {})),
                    list(parameters.get("required", [])),
                    _rendered(implementations[name]),
                ),
            )
        )
    return tools
