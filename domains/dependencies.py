"""The tool-dependency graph inside a domain: A -> B when what A returns or writes can feed
one of B's arguments (an id of the entity A reads or creates, matching by name and type).

Task generation walks this graph: a walk is a plausible sequence of calls in which later
calls use what earlier calls produced.
"""

from __future__ import annotations

import rustworkx as rx

from .infer import id_entity
from .spec import DomainSpec, OperatorSpec


def produces(op: OperatorSpec) -> set[str]:
    """Entities whose ids this tool hands out: the rows it selects, creates or changes."""
    return {op.table} if op.action in ("select", "insert", "update") else set()


def consumes(op: OperatorSpec) -> set[str]:
    """Entities whose ids this tool takes as arguments (its row key and foreign keys)."""
    out = {op.table} if op.key else set()
    out |= {e for arg in op.parameters.get("properties", {}) if (e := id_entity(arg))}
    return out


def dependency_graph(spec: DomainSpec) -> rx.PyDiGraph:
    """Node i = spec.tools[i] (by name); edge payload = the entities passed along. Only the
    edges a model confirmed, when the spec records them."""
    graph = rx.PyDiGraph(multigraph=False)
    nodes = graph.add_nodes_from([op.name for op in spec.tools])
    made = [produces(op) for op in spec.tools]
    taken = [consumes(op) for op in spec.tools]
    confirmed = None if spec.confirmed_edges is None else set(map(tuple, spec.confirmed_edges))
    for a in nodes:
        for b in nodes:
            shared = made[a] & taken[b]
            if a != b and shared and (confirmed is None or (graph[a], graph[b]) in confirmed):
                graph.add_edge(a, b, sorted(shared))
    return graph
