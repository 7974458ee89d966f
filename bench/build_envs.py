"""Environment-construction benchmark (not a test): prints seconds per stage and peak RSS.

`pipeline build`'s stages (ingest, graph + communities, domains + 10 tasks per domain) over
every tool spec in ../shared/corpora, with the parallel speed-up of the domain stage measured
against one worker in the same run; then the graph stage alone on synthetic corpora of 20k /
50k / 100k tools, to show how its cost grows with the number of edges (target: about linearly).

With `--embedding minilm` (the `embeddings` extra) or a sentence-transformers folder, the graph
stage also runs on that sentence embedding over the shared corpus, against TF-IDF in the same run.

Usage: uv run python bench/build_envs.py [--corpus ../shared/corpora] [--workers N]
       [--embedding minilm]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

from agentscaler.pipeline.build import build_domains
from agentscaler.pipeline.embedding import SentenceEncoder
from agentscaler.pipeline.graph import (
    Domains,
    GraphConfig,
    detect_domains,
    parameter_sentence,
    preload_tfidf,
    similarity_graph,
)
from agentscaler.pipeline.ingest import IngestConfig, Source, ToolSpec, ingest
from agentscaler.pipeline.parallel import default_workers
from agentscaler.pipeline.summary import BuildSummary
from agentscaler.pipeline.tasks import TaskConfig

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


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def shared_corpus(corpus: Path, workers: int, embedding: str | None) -> None:
    """Every stage of `pipeline build` over the shared corpus, timed one by one."""
    t0 = time.perf_counter()
    imported = []
    report = ingest(
        IngestConfig(corpus_root=corpus),
        workers,
        lambda: imported.append(_timed(preload_tfidf)),  # as `pipeline build` does
    )
    t2 = time.perf_counter()
    domains = detect_domains(report.tools)
    t3 = time.perf_counter()
    builds = build_domains(
        domains.domains, report.tools, tasks=TaskConfig(per_domain=10), workers=workers
    )
    t4 = time.perf_counter()
    summary = BuildSummary.of(report, domains, builds)
    read = sum(c.read for c in report.sources.values())
    print(f"shared corpus {corpus}: {read} records read, {len(report.tools)} tools kept")
    print(
        f"  seconds: ingest ({workers} workers) {t2 - t0:.2f}, scikit-learn imported meanwhile in "
        f"{imported[0]:.2f}; graph + communities "
        f"{t3 - t2:.2f}; domains + tasks ({workers} workers) {t4 - t3:.2f}; "
        f"total {t4 - t0:.2f} (target <= 30)"
    )
    print(
        f"  {domains.edges} edges, {summary.communities} communities (sizes "
        f"{summary.community_sizes}); {summary.domains_kept} domains kept, "
        f"{summary.tools_passing} tools pass the execution check, failing "
        f"{summary.tools_failing}; {summary.tasks} tasks ({summary.tasks_changing_state} change "
        f"state), per domain {summary.tasks_per_domain}"
    )
    print(
        f"  peak RSS: this process {peak_rss_mib():.0f} MiB, largest worker "
        f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MiB"
    )
    if embedding:
        sentence_graph(report.tools, embedding, domains, t3 - t2)
    sample = domains.domains[::3]
    timings = {}
    for n in (1, workers):
        start = time.perf_counter()
        build_domains(sample, report.tools, tasks=TaskConfig(per_domain=10), workers=n)
        timings[n] = time.perf_counter() - start
    print(
        f"  domains + tasks on every third community: 1 worker {timings[1]:.2f}s, {workers} "
        f"workers {timings[workers]:.2f}s, speed-up {timings[1] / timings[workers]:.2f}x"
    )


def sentence_graph(
    tools: list[ToolSpec], embedding: str, tfidf: Domains, tfidf_seconds: float
) -> None:
    """The graph stage on a sentence embedding: its cost against TF-IDF's, and how far its
    domains are from TF-IDF's (pairs of tools put together by both, over either)."""
    texts = [t for t in map(parameter_sentence, tools) if t][:1000]
    encoder = SentenceEncoder(embedding)
    encoder.encode(texts[:8])  # loads the model: not part of the rate
    start = time.perf_counter()
    encoder.encode(texts)
    rate = len(texts) / (time.perf_counter() - start)
    config = GraphConfig(embedding=embedding)
    start = time.perf_counter()
    dense = detect_domains(tools, config)
    seconds = time.perf_counter() - start
    print(
        f"  sentence embedding {embedding!r}: {rate:.0f} texts/s; graph + communities "
        f"{seconds:.1f}s, {seconds / tfidf_seconds:.0f}x TF-IDF's; threshold "
        f"{config.edge_threshold}: {dense.edges} edges, {len(dense.domains)} domains"
    )
    together = [_pairs(d) for d in (tfidf.domains, dense.domains)]
    print(
        f"  tool pairs in one domain: TF-IDF {len(together[0])}, embedding {len(together[1])}, "
        f"both {len(together[0] & together[1])} "
        f"(Jaccard {len(together[0] & together[1]) / len(together[0] | together[1]):.2f})"
    )


def _pairs(domains: list[list[str]]) -> set[tuple[str, str]]:
    return {(a, b) for d in domains for a in d for b in d if a < b}


def main(corpus: Path, workers: int, embedding: str | None) -> None:
    graph = GraphConfig()
    print(
        f"python {sys.version.split()[0]}; graph config "
        f"{ {**graph.model_dump(), 'threshold': graph.edge_threshold} }"
    )
    if corpus.is_dir():
        shared_corpus(corpus, workers, embedding)
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
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--embedding", help="also build the graph on this sentence embedding")
    args = parser.parse_args()
    main(args.corpus, args.workers, args.embedding)
