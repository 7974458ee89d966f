"""DomainSpec inference, compilation to runtime tools, seeding and the execution check."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentscaler.domains.check import check_domain
from agentscaler.domains.compile import compile_domain
from agentscaler.domains.dependencies import dependency_graph
from agentscaler.domains.infer import infer_domain
from agentscaler.domains.spec import DomainSpec
from agentscaler.pipeline.cli import main
from agentscaler.pipeline.ingest import IngestConfig, ToolSpec, ingest
from agentscaler.runtime import Environment, Statement, ToolErrorKind

pytestmark = pytest.mark.anyio
SAMPLES = Path(__file__).parent / "data" / "corpora"


@pytest.fixture(scope="module")
def retail_tools() -> list[ToolSpec]:
    report = ingest(IngestConfig(corpus_root=SAMPLES, exclude_tags=()))
    return [t for t in report.tools if t.source.corpus == "tau-bench"]


def test_tau_bench_retail_gives_users_orders_products(retail_tools: list[ToolSpec]) -> None:
    """Entities come from id arguments; verbs decide the operators."""
    spec = infer_domain("retail", retail_tools)
    assert {"user", "order", "product"} <= {t.name for t in spec.tables}
    ops = {op.name: op for op in spec.tools}
    assert (ops["get_order_details"].action, ops["get_order_details"].key) == ("select", "order_id")
    assert ops["get_order_details"].kind == "read"
    assert (ops["cancel_pending_order"].action, ops["cancel_pending_order"].table) == (
        "update",
        "order",
    )
    assert ops["find_user_id_by_email"].table == "user"
    assert ops["find_user_id_by_email"].many
    assert ops["transfer_to_human_agents"].action == "insert"
    order = next(t for t in spec.tables if t.name == "order")
    assert order.primary_key == "order_id"
    assert "reason" in {c.name for c in order.columns}


async def test_compiled_retail_passes_the_execution_check(retail_tools: list[ToolSpec]) -> None:
    """Every inferred retail tool runs successfully on the seeded database; the spec is JSON
    and the same spec compiles to the same seeded database."""
    spec = infer_domain("retail", retail_tools)
    assert DomainSpec.model_validate_json(spec.model_dump_json()) == spec
    assert (
        infer_domain("retail", list(reversed(retail_tools))).model_dump_json()
        == spec.model_dump_json()
    )
    result = await check_domain(spec)
    assert result.failures == {}
    assert len(result.spec.tools) == len(retail_tools)
    first = await Environment.build(compile_domain(spec))
    second = await Environment.build(compile_domain(spec))
    assert first.initial_hash == second.initial_hash


async def test_writes_change_state_and_arguments_stay_bound(retail_tools: list[ToolSpec]) -> None:
    """A write changes exactly what it names; SQL in an argument is stored as text."""
    spec = infer_domain("retail", retail_tools)
    env = await Environment.build(compile_domain(spec))
    evil = "'); DROP TABLE user; --"
    address = {"address1": evil, "address2": "", "city": "c", "state": "s", "country": "x"}
    async with env.fork() as state:
        obs = await state.call(
            "modify_user_address", {"user_id": "user_0001", **address, "zip": "1"}
        )
        assert obs.ok, obs.content
        assert obs.changed
        rows = {r["user_id"]: r for r in await state.rows("user")}
        assert rows["user_0001"]["address_1"] == evil
        assert len(rows) == spec.rows_per_table
        missing = await state.call(
            "modify_user_address", {"user_id": "nope", **address, "zip": "1"}
        )
        assert missing.content == "Error: user nope not found"
        # The agent-facing schema is the spec's own: its enums are enforced.
        refused = await state.call(
            "cancel_pending_order", {"order_id": "order_0001", "reason": "x"}
        )
        assert refused.error is ToolErrorKind.INVALID_ARGUMENTS
        assert "'no longer needed' or 'ordered by mistake'" in refused.content
        async with state.database() as db:
            assert await db.fetch_one(Statement('SELECT COUNT(*) FROM "user"')) is not None


async def test_failing_tools_are_reported_and_dropped(retail_tools: list[ToolSpec]) -> None:
    """With no seed rows, tools that must find a row fail the check and are dropped; the rest
    (listing and creating tools) are kept."""
    spec = infer_domain("retail", retail_tools).model_copy(update={"rows_per_table": 0})
    result = await check_domain(spec)
    assert "get_order_details" in result.failures
    assert result.failures["get_order_details"].observation.startswith("Error: order")
    kept = {op.name for op in result.spec.tools}
    assert "find_user_id_by_email" in kept
    assert "get_order_details" not in kept


def test_domains_cli_after_ingest_and_graph(tmp_path: Path) -> None:
    """ingest -> graph -> domains writes checked DomainSpecs covering the sample corpus."""
    assert main(["domains", "--run-dir", str(tmp_path)]) == 2  # nothing to build from yet
    assert (
        main(["ingest", "--corpus", str(SAMPLES), "--run-dir", str(tmp_path), "--include-eval"])
        == 0
    )
    assert main(["graph", "--run-dir", str(tmp_path)]) == 0
    assert main(["domains", "--run-dir", str(tmp_path), "--workers", "1"]) == 0
    lines = (tmp_path / "domains" / "specs.jsonl").read_text().splitlines()
    specs = [DomainSpec.model_validate_json(line) for line in lines]
    assert specs
    assert all(len(s.tools) >= 2 for s in specs)
    assert (tmp_path / "domains" / "check.json").exists()


def test_dependency_graph_links_producers_to_consumers(retail_tools: list[ToolSpec]) -> None:
    """A tool that yields order ids feeds every tool that takes an order id, not the reverse
    for tools that only consume."""
    spec = infer_domain("retail", retail_tools)
    graph = dependency_graph(spec)
    edges = {(graph[a], graph[b]) for a, b in graph.edge_list()}
    assert ("get_order_details", "cancel_pending_order") in edges
    assert ("find_user_id_by_email", "get_user_details") in edges
    assert ("get_user_details", "get_order_details") not in edges  # users do not yield order ids
    assert not any(a == "think" for a, _ in edges)  # nothing takes a thought's id
