"""The hand-written vertical domains by name, with τ-bench's view of each."""

from __future__ import annotations

from collections.abc import Callable

from agentscaler.domains.airline import AIRLINE_VIEW, airline
from agentscaler.domains.retail import RETAIL_VIEW, retail
from agentscaler.domains.tau.view import TauView
from agentscaler.runtime import Domain

VERTICAL: dict[str, tuple[Callable[[], Domain], TauView]] = {
    "retail": (retail, RETAIL_VIEW),
    "airline": (airline, AIRLINE_VIEW),
}
