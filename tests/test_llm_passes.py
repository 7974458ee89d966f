"""The optional model passes over a build, against a loopback OpenAI-compatible fake."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from agentscaler.domains.dependencies import dependency_graph
from agentscaler.pipeline.build import DomainBuild, build_domains
from agentscaler.pipeline.ingest import IngestConfig, ingest
from agentscaler.pipeline.llm import LLMConfig
from agentscaler.pipeline.tasks import TaskConfig

SAMPLES = Path(__file__).parent / "data" / "corpora"
Server = Callable[..., AbstractContextManager[tuple[str, list[dict[str, Any]]]]]


def _reviewer() -> Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]:
    """Keeps every other candidate edge; rewrites intents, losing the values of every other."""
    rewrites = 0

    def reply(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        nonlocal rewrites
        prompt = body["messages"][-1]["content"]
        if body.get("tools"):  # the edge pass asks for structured output through a tool
            n = len(re.findall(r"^\d+\. ", prompt, flags=re.M))
            keep = json.dumps({"keep": [i % 2 == 0 for i in range(n)]})
            call = {"name": body["tools"][0]["function"]["name"], "arguments": keep}
            return 200, {
                "role": "assistant",
                "tool_calls": [{"id": "c1", "type": "function", "function": call}],
            }
        rewrites += 1
        request = prompt.split("Request: ", 1)[1]
        text = "Please help me." if rewrites % 2 == 0 else f"Hi! {request}"
        return 200, {"role": "assistant", "content": text}

    return reply


def _build(base_url: str) -> DomainBuild:
    tools = [
        t
        for t in ingest(IngestConfig(corpus_root=SAMPLES, exclude_tags=())).tools
        if t.source.corpus == "tau-bench"
    ]
    llm = LLMConfig(model="reviewer", base_url=base_url, edges=True, intents=True)
    [built] = build_domains(
        [[t.name for t in tools]], tools, tasks=TaskConfig(per_domain=6, min_calls=2), llm=llm
    )
    return built


def test_model_confirms_edges_and_rewrites_intents(openai_server: Server) -> None:
    """Dropped edges are gone from the stored spec and from every walk; rewrites that keep the
    task's values replace the template, the others are refused."""
    with openai_server(_reviewer()) as (url, requests):
        built = _build(url)
    assert built.spec is not None and built.llm is not None
    confirmed = built.spec.confirmed_edges
    assert confirmed and built.llm.edges_dropped > 0
    assert dependency_graph(built.spec).num_edges() == len(confirmed)
    kept = set(map(tuple, confirmed))
    for task in built.tasks:
        names = [c.name for c in task.gold_calls]
        assert all(pair in kept for pair in itertools.pairwise(names)), names
    rewritten = [t for t in built.tasks if t.intent.startswith("Hi! ")]
    assert len(rewritten) == built.llm.intents_rewritten > 0
    assert built.llm.intents_refused == len(built.tasks) - len(rewritten) > 0
    assert not built.llm.failures
    assert len(requests) == 1 + len(built.tasks)


def test_a_failing_model_leaves_the_build_intact(openai_server: Server) -> None:
    """HTTP 500 on every request: inferred edges and template intents stay, failures counted."""
    with openai_server(lambda body: (500, {})) as (url, _):
        built = _build(url)
    assert built.spec is not None and built.llm is not None
    assert built.spec.confirmed_edges is None
    assert built.tasks and all(t.intent.startswith("I need") for t in built.tasks)
    assert len(built.llm.failures) == 1 + len(built.tasks)
    assert built.llm.failures[0].startswith("edges: ")
