"""Build every domain of a run: infer its DomainSpec, check it by execution, keep what works."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import BaseModel

from agentscaler.pipeline.ingest import ToolSpec

from .check import check_domain
from .infer import infer_domain
from .spec import DomainSpec


class BuildReport(BaseModel):
    specs: list[DomainSpec]  # checked: failing tools removed, domains left with < 2 tools dropped
    failures: dict[str, dict[str, str]]  # domain -> tool -> what it returned
    dropped: list[str]  # domains with fewer than two working tools


async def build_domains(
    partition: Sequence[Sequence[str]],
    tools: Sequence[ToolSpec],
    seed: int = 0,
    on_domain: Callable[[], None] | None = None,
) -> BuildReport:
    """One DomainSpec per community (named d0000, d0001, ... in partition order)."""
    by_name = {t.name: t for t in tools}
    specs, failures, dropped = [], {}, []
    for i, names in enumerate(partition):
        name = f"d{i:04d}"
        result = await check_domain(infer_domain(name, [by_name[n] for n in names], seed=seed + i))
        if result.failures:
            failures[name] = result.failures
        if len(result.spec.tools) >= 2:
            specs.append(result.spec)
        else:
            dropped.append(name)
        if on_domain is not None:
            on_domain()
    return BuildReport(specs=specs, failures=failures, dropped=dropped)
