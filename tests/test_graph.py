"""Parameter-similarity edges and community detection into size-bounded domains."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentscaler.pipeline.cli import main
from agentscaler.pipeline.graph import (
    GraphConfig,
    detect_domains,
    parameter_document,
    similarity_graph,
    tokens,
)
from agentscaler.pipeline.ingest import IngestConfig, Source, ToolSpec, ingest

SAMPLES = Path(__file__).parent / "data" / "corpora"


def spec(name: str, params: dict[str, Any], description: str = "") -> ToolSpec:
    return ToolSpec(
        name=name,
        original_name=name,
        description=description or name,
        parameters={"type": "object", "properties": params},
        returns={"type": "object"},
        source=Source(corpus="t", file="f", record=name),
    )


S = {"type": "string"}


def test_tokens_split_identifiers_and_drop_stop_words() -> None:
    """camelCase, snake_case and prose become lower-case content words."""
    assert tokens("getUserID for the order_id") == ("user", "id", "order", "id")  # "get": stop
    assert "city" in parameter_document(spec("w", {"cityName": {**S, "description": "The city."}}))


def test_similar_parameter_lists_are_linked_and_others_not() -> None:
    """Hand-checked pairs: tools over the same entity share an edge; unrelated ones do not."""
    tools = [
        spec("get_order", {"order_id": {**S, "description": "The order id, such as '#W0000001'."}}),
        spec(
            "cancel_order",
            {"order_id": {**S, "description": "The order id to cancel."}, "reason": S},
        ),
        spec("get_weather", {"city": {**S, "description": "City name, e.g. Paris."}, "unit": S}),
        spec(
            "forecast",
            {
                "city": {**S, "description": "The city for the forecast."},
                "days": {"type": "integer"},
            },
        ),
        spec("ping", {}),
    ]
    graph = similarity_graph(tools, GraphConfig(threshold=0.3))
    edges = {tuple(sorted((tools[a].name, tools[b].name))) for a, b in graph.edge_list()}
    assert ("cancel_order", "get_order") in edges
    assert ("forecast", "get_weather") in edges
    assert not any("ping" in e for e in edges)
    assert ("get_order", "get_weather") not in edges


@pytest.fixture(scope="module")
def sample_tools() -> list[ToolSpec]:
    return ingest(IngestConfig(corpus_root=SAMPLES, exclude_tags=())).tools


def test_domains_respect_size_bounds_and_cover_every_tool(sample_tools: list[ToolSpec]) -> None:
    """Every tool lands in exactly one domain; sizes stay within [min_size, max_size]."""
    config = GraphConfig(min_size=3, max_size=12)
    domains = detect_domains(sample_tools, config)
    flat = [name for d in domains.domains for name in d]
    assert sorted(flat) == sorted(t.name for t in sample_tools)
    assert all(3 <= len(d) <= 12 for d in domains.domains), domains.sizes()


def test_domains_are_deterministic_for_a_seed(sample_tools: list[ToolSpec]) -> None:
    """Same tools, same config: the same partition, byte for byte."""
    a = detect_domains(sample_tools, GraphConfig(seed=7)).model_dump_json()
    b = detect_domains(list(sample_tools), GraphConfig(seed=7)).model_dump_json()
    assert a == b


def test_tau_bench_retail_tools_stay_together(sample_tools: list[ToolSpec]) -> None:
    """The retail tools that share order/user ids end up in one domain."""
    domains = detect_domains(sample_tools, GraphConfig(min_size=3, max_size=40))
    home = {name: i for i, d in enumerate(domains.domains) for name in d}
    order_tools = ["get_order_details", "cancel_pending_order", "return_delivered_order_items"]
    assert len({home[n] for n in order_tools}) == 1


def test_graph_cli_after_ingest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`pipeline ingest` then `pipeline graph` writes domains.json covering every kept tool."""
    assert main(["graph", "--run-dir", str(tmp_path)]) == 2  # no corpus yet: a clear error
    assert main(["ingest", "--corpus", str(SAMPLES), "--run-dir", str(tmp_path)]) == 0
    assert main(["graph", "--run-dir", str(tmp_path), "--max-size", "10"]) == 0
    domains = json.loads((tmp_path / "graph" / "domains.json").read_text())
    kept = (tmp_path / "corpus" / "tools.jsonl").read_text().splitlines()
    assert sum(len(d) for d in domains["domains"]) == len(kept) == domains["tools"]
    assert "domains (sizes" in capsys.readouterr().out
