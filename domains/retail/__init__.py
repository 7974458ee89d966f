"""τ-bench's retail domain on our runtime: typed tables holding its data losslessly, its 16
tools with its observations, its policy as the agent's system prompt, its tasks as `Task`s.

`RETAIL_VIEW` gives τ-bench's JSON structure and data hash of any fork, so final states compare
with hashes τ-bench computed.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import orjson

from agentscaler.domains.tau.tools import unknown_action
from agentscaler.domains.tau.view import TauView
from agentscaler.runtime import Domain

from . import records
from .tables import TABLES
from .tools import tools

DATA = Path(__file__).parent / "data"
RETAIL_VIEW = TauView(records.COLLECTIONS)


@cache
def source_data() -> dict[str, dict[str, Any]]:
    """τ-bench's retail JSON as shipped: {"users": ..., "orders": ..., "products": ...}."""
    return {
        c.name: orjson.loads((DATA / f"{c.name}.json").read_bytes()) for c in records.COLLECTIONS
    }


def retail() -> Domain:
    data = source_data()
    return Domain(
        name="retail",
        tables=TABLES,
        tools=tools(),
        unknown_tool=unknown_action,
        policy=(DATA / "policy.md").read_text(),
        seed=records.seed_rows(data["users"], data["orders"], data["products"]),
    )
