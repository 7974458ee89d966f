"""Environment-construction benchmark (not a test): prints seconds per stage and peak RSS.

Stages measured so far: ingest and graph (domains and tasks come with their issue) over every
tool spec in ../shared/corpora, then the graph stage alone on synthetic corpora of 20k / 50k /
100k tools, to show how its cost grows with the number of edges (target: about linearly).

Usage: uv run python bench/build_envs.py [--corpus ../shared/corpora]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from pathlib import Path

from agentscaler.pipeline.graph import GraphConfig, detect_domains, similarity_graph
from agentscaler.pipeline.ingest import IngestConfig, Source, ToolSpec, ingest

TYPES = ["string", "integer", "number", "boolean"]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_tools(n: int, seed: int = 0) -> list[ToolSpec]:
    """Tools in clusters of ~12 that share an entity's parameters, like real API families.

    The vocabulary grows with the corpus (n / 5 words), as real ones do; a fixed vocabulary
    would make every word's document frequency, and so the similarity product, grow as n^2.
    """
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(max(1000, n // 5))]
    tools = []
    for i in range(n):
        family = i // 12
        frng = random.Random(family * 7919 + seed)
        shared = frng.sample(words, 4)
        own = rng.sample(words, 2)
        props = {
            f"{w}_{j}" if j else w: {
                "type": rng.choice(TYPES),
                "description": f"{w} of {shared[0]}",
            }
            for j, w in enumerate([*shared[:3], *own])
        }
        tools.append(
            ToolSpec(
                name=f"tool_{i}",
                original_name=f"tool_{i}",
                description=f"operates on {shared[0]}",
                parameters={"type": "object", "properties": props},
                returns={"type": "object"},
                source=Source(corpus="synthetic", file="-", record=str(i)),
            )
        )
    return tools


def main(corpus: Path) -> None:
    print(f"python {sys.version.split()[0]}; graph config {GraphConfig().model_dump()}")
    if corpus.is_dir():
        t0 = time.perf_counter()
        report = ingest(IngestConfig(corpus_root=corpus))
        t1 = time.perf_counter()
        domains = detect_domains(report.tools)
        t2 = time.perf_counter()
        sizes = domains.sizes()
        read = sum(c.read for c in report.sources.values())
        print(f"shared corpus {corpus}: {read} records read, {len(report.tools)} tools kept")
        print(
            f"  ingest {t1 - t0:.2f}s; graph + domains {t2 - t1:.2f}s; total {t2 - t0:.2f}s (target <= 30 s)"
        )
        print(
            f"  {domains.edges} edges, {len(sizes)} domains, sizes {sizes[-1]}-{sizes[0]}, "
            f"median {sizes[len(sizes) // 2]}; peak RSS {peak_rss_mib():.0f} MiB"
        )
    else:
        print(f"{corpus} is absent: skipping the shared-corpus run (pass --corpus)")
    rows = []
    for n in (20_000, 50_000, 100_000):
        tools = synthetic_tools(n)
        t0 = time.perf_counter()
        graph = similarity_graph(tools, GraphConfig())
        t1 = time.perf_counter()
        domains = detect_domains(tools)
        t2 = time.perf_counter()
        rows.append((n, graph.num_edges(), t1 - t0, t2 - t0, len(domains.domains)))
    _, base_e, _, base_t, _ = rows[0]
    print(
        "synthetic: tools, edges, similarity s, graph+domains s, domains, time ratio / edge ratio vs 20k"
    )
    for n, e, ts, tt, d in rows:
        print(f"  {n:>7} {e:>9} {ts:6.2f} {tt:6.2f} {d:>6}   {(tt / base_t) / (e / base_e):.2f}")
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "corpora"
    )
    main(parser.parse_args().corpus)
