"""Domains from communities: infer, compile, seed, check by execution, generate tasks.

One pass per domain over one built `Environment` (the check's environment is the tasks'), and
domains in parallel worker processes. Everything is a function of the inputs and the seed, in
partition order, so the outputs are byte-identical for any number of workers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import BaseModel, Field

from agentscaler.domains.check import ToolFailure, check_domain
from agentscaler.domains.infer import infer_domain
from agentscaler.domains.spec import DomainSpec
from agentscaler.pipeline.ingest import ToolSpec
from agentscaler.pipeline.llm import LLMConfig, PassReport, edge_pass, intent_pass
from agentscaler.pipeline.parallel import ordered_map, run_async
from agentscaler.pipeline.tasks import TaskConfig, domain_tasks
from agentscaler.runtime import Task, UserError

MIN_TOOLS = 2  # a domain needs at least this many working tools to be kept


class DomainBuild(BaseModel):
    """One community's outcome. `spec` is None when the domain was dropped (`reason` says why)."""

    name: str
    tools: int  # in the community
    spec: DomainSpec | None
    failures: dict[str, ToolFailure] = Field(default_factory=dict)
    reason: str | None = None
    tasks: list[Task] = Field(default_factory=list)
    llm: PassReport | None = None  # what the optional model passes did


async def build_domain(
    name: str,
    tools: Sequence[ToolSpec],
    seed: int,
    tasks: TaskConfig | None,
    llm: LLMConfig | None = None,
) -> DomainBuild:
    spec = infer_domain(name, tools, seed=seed)
    try:
        checked = await check_domain(spec)
    except UserError as exc:  # the domain does not build: report it, the others go on
        return DomainBuild(name=name, tools=len(tools), spec=None, reason=f"does not build: {exc}")
    if len(checked.spec.tools) < MIN_TOOLS:
        return DomainBuild(
            name=name,
            tools=len(tools),
            spec=None,
            failures=checked.failures,
            reason=f"fewer than {MIN_TOOLS} tools pass the execution check",
        )
    spec, model = checked.spec, llm.build() if llm and (llm.edges or llm.intents) else None
    report = PassReport() if model else None
    if llm and model and report and llm.edges:
        spec = await edge_pass(model, spec, report)
    made = await domain_tasks(spec, checked.environment, tasks) if tasks is not None else []
    if llm and model and report and llm.intents:
        made = await intent_pass(model, made, report, llm.concurrency)
    return DomainBuild(
        name=name, tools=len(tools), spec=spec, failures=checked.failures, tasks=made, llm=report
    )


def _build_one(
    job: tuple[str, list[ToolSpec], int, TaskConfig | None, LLMConfig | None],
) -> DomainBuild:
    return run_async(build_domain, *job)


def build_domains(
    partition: Sequence[Sequence[str]],
    tools: Sequence[ToolSpec],
    *,
    seed: int = 0,
    tasks: TaskConfig | None = None,
    llm: LLMConfig | None = None,
    workers: int = 1,
    on_domain: Callable[[], None] | None = None,
) -> list[DomainBuild]:
    """One DomainBuild per community, named d0000, d0001, ... in partition order; community i
    is seeded with `seed + i`. With `tasks`, each kept domain also gets its tasks; with `llm`,
    the model passes it enables run on each kept domain."""
    by_name = {t.name: t for t in tools}
    jobs = [
        (f"d{i:04d}", [by_name[n] for n in names], seed + i, tasks, llm)
        for i, names in enumerate(partition)
    ]
    out = []
    for result in ordered_map(_build_one, jobs, workers):
        out.append(result)
        if on_domain is not None:
            on_domain()
    return out
