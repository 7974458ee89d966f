"""Optional model passes over environment construction; both are off by default.

- Edges: the paper has a model confirm each candidate tool dependency. Given a domain's tools
  and its inferred A -> B edges, the model keeps or drops each; the kept ones are stored in the
  DomainSpec (`confirmed_edges`), so task walks follow them and a rerun needs no model.
- Intents: a template intent rewritten as a user would say it. A rewrite that loses a value the
  gold calls need (an id, a name, a number) would make the task unsolvable: it is refused and
  the template kept.

A failing model (HTTP errors, malformed output) never fails the build: the domain keeps its
inferred edges or template intents, and the failure is counted in the build report.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import anyio
import structlog
from pydantic import BaseModel, Field
from pydantic_ai import Agent
from pydantic_ai.models import Model, infer_model

from agentscaler.domains.dependencies import dependency_graph
from agentscaler.domains.spec import DomainSpec
from agentscaler.runtime import Task, openai_compatible

log = structlog.get_logger(__name__)


class LLMConfig(BaseModel):
    """Which model, and which passes it runs."""

    # A pydantic-ai model string ("openai:gpt-4o-mini", "anthropic:claude-sonnet-4-0", ...) or,
    # with `base_url`, the model name on an OpenAI-compatible server (vLLM, SGLang, Ollama).
    model: str
    base_url: str | None = None
    api_key: str = "unused"
    edges: bool = False
    intents: bool = False
    concurrency: int = Field(default=8, ge=1)  # model requests in flight per domain

    def build(self) -> Model:
        if self.base_url:
            return openai_compatible(self.model, self.base_url, self.api_key)
        return infer_model(self.model)


class EdgeVerdicts(BaseModel):
    keep: list[bool] = Field(description="one answer per candidate, in the order given")


_EDGES = (
    "You review dependencies between the tools of one application. A candidate 'A -> B' "
    "claims that a value A returns or creates (an entity id) is a sensible input to B in a "
    "real workflow. Answer for every candidate, in order: true to keep it, false to drop it."
)
_INTENT = (
    "Rewrite the request as the user below would say it to a support agent, in one or two "
    "sentences. Keep every value (ids, names, numbers, dates) exactly as written; add no new "
    "requests and leave none out. Reply with the rewritten request only."
)


async def confirm_edges(model: Model, spec: DomainSpec) -> list[tuple[str, str]]:
    """The inferred edges the model keeps; ValueError when its answer does not fit them."""
    graph = dependency_graph(spec)
    edges = [(graph[a], graph[b], graph.get_edge_data(a, b)) for a, b in graph.edge_list()]
    edges.sort(key=lambda e: (e[0], e[1]))
    if not edges:
        return []
    tools = "\n".join(f"- {op.name}: {op.description or op.name}" for op in spec.tools)
    candidates = "\n".join(
        f"{i}. {a} -> {b} (passes the {', '.join(entities)} id)"
        for i, (a, b, entities) in enumerate(edges, 1)
    )
    agent = Agent(model, output_type=EdgeVerdicts, instructions=_EDGES)
    verdicts = await agent.run(f"Tools:\n{tools}\n\nCandidates:\n{candidates}")
    keep = verdicts.output.keep
    if len(keep) != len(edges):
        raise ValueError(f"{len(keep)} verdicts for {len(edges)} candidate edges")
    return [(a, b) for (a, b, _), kept in zip(edges, keep, strict=True) if kept]


def _values(value: Any) -> list[str]:
    """The scalar values, nested ones included, that the user must pass on to the agent."""
    if isinstance(value, dict):
        return [v for item in value.values() for v in _values(item)]
    if isinstance(value, list | tuple):
        return [v for item in value for v in _values(item)]
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return [str(value)]
    return []


def _mentions(text: str, value: str) -> bool:
    """`value` as a whole token of `text` ("1" is not found in "10")."""
    pattern = r"(?<![\w.])" + re.escape(value.lower()) + r"(?![\w]|\.\d)"
    return re.search(pattern, text.lower()) is not None


async def rewrite_intent(model: Model, task: Task) -> str | None:
    """The model's phrasing of the task, or None when it dropped a value the task needs."""
    agent = Agent(model, output_type=str, instructions=_INTENT)
    persona = f"User: {task.persona}\n" if task.persona else ""
    text = (await agent.run(f"{persona}Request: {task.intent}")).output.strip()
    needed = _values([call.arguments for call in task.gold_calls])
    missing = [v for v in needed if not _mentions(text, v)]
    return None if missing or not text else text


class PassReport(BaseModel):
    """What the model passes did to one domain."""

    edges_dropped: int = 0
    intents_rewritten: int = 0
    intents_refused: int = 0  # rewrites that lost a needed value: template kept
    failures: list[str] = Field(default_factory=list)  # model errors, one line each


async def edge_pass(model: Model, spec: DomainSpec, report: PassReport) -> DomainSpec:
    """The spec with the edges the model confirmed; unchanged when the model fails."""
    try:
        kept = await confirm_edges(model, spec)
    except Exception as exc:  # any model failure leaves the inferred edges
        report.failures.append(f"edges: {type(exc).__name__}: {exc}")
        log.warning("llm edge pass failed", domain=spec.name, error=str(exc))
        return spec
    report.edges_dropped = dependency_graph(spec).num_edges() - len(kept)
    return spec.model_copy(update={"confirmed_edges": kept})


async def intent_pass(
    model: Model, tasks: Sequence[Task], report: PassReport, concurrency: int
) -> list[Task]:
    """The tasks with rewritten intents, where the model kept every needed value."""
    out = list(tasks)
    limiter = anyio.CapacityLimiter(concurrency)
    failures: dict[int, str] = {}

    async def rewrite(i: int) -> None:
        async with limiter:
            try:
                text = await rewrite_intent(model, out[i])
            except Exception as exc:  # the template intent stays
                failures[i] = f"intent {out[i].id}: {type(exc).__name__}: {exc}"
                return
        if text is None:
            report.intents_refused += 1
        else:
            report.intents_rewritten += 1
            out[i] = out[i].model_copy(update={"intent": text})

    async with anyio.create_task_group() as group:
        for i in range(len(out)):
            group.start_soon(rewrite, i)
    report.failures += [failures[i] for i in sorted(failures)]
    if failures:
        log.warning("llm intent pass failed for some tasks", failed=len(failures))
    return out
