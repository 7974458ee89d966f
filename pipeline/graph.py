"""Tool graph and domains: parameter-similarity edges, then community detection.

Two tools are linked when their parameter lists (names, types, descriptions) are similar: the
paper's premise is that tools sharing parameters operate on the same environment state. The
offline default embedding is TF-IDF over identifier-split tokens with English stop words and
corpus-frequent terms removed, so the sparse product X.X^T stays sparse (1.7 s for the 15k tools
of the shared corpus here; DESIGN.md: with every term kept it turns nearly dense). Communities
come from python-igraph's Leiden (rustworkx has none; DESIGN.md measured igraph at 0.2-0.4 s on a
15k-node, 150k-edge graph against 4-6 s for networkx's Louvain, and it is seedable). Tiny communities merge into
their best-connected (else most similar) neighbour, huge ones are split by a finer Leiden.
`embedding` swaps TF-IDF for a sentence embedding (`pipeline.embedding`, optional).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from functools import cache, lru_cache

import igraph
import numpy as np
import rustworkx as rx
from pydantic import BaseModel, Field, field_validator
from scipy import sparse

from .embedding import MINILM, SentenceEncoder, model_folder, similar_pairs
from .ingest import ToolSpec

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z]|\b|\d|_)|[A-Z]?[a-z]+|\d+")
_EXTRA_STOP = frozenset({"e", "g", "eg", "ie", "etc", "default", "optional"})
TFIDF = "tfidf"
TFIDF_THRESHOLD = 0.35
DENSE_THRESHOLD = 0.7


@cache
def _stop_words() -> frozenset[str]:
    # scikit-learn is imported where it is used: its import (scipy.stats) takes ~3 s, which
    # every `pipeline` command would otherwise pay.
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) | _EXTRA_STOP


def preload_tfidf() -> None:
    """Import scikit-learn's text features now (~3.5 s: scipy.stats, and pandas when it is
    installed), e.g. while ingest's workers read."""
    _stop_words()


class GraphConfig(BaseModel):
    """Edges and communities; every knob that changes the domains is here."""

    embedding: str = Field(
        default=TFIDF,
        description="tfidf, minilm (the `embeddings` extra) or a sentence-transformers folder",
    )
    # Sentence-embedding cosines run higher: on the shared corpus 0.7 gives 8.7 edges per tool
    # and TF-IDF's 0.35 gives 10.7 (README).
    threshold: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="cosine similarity for an edge (default: 0.35 for TF-IDF, 0.7 for a "
        "sentence embedding)",
    )
    max_df: float = Field(
        default=0.05, gt=0, le=1, description="TF-IDF: terms in more tools are stop words"
    )
    resolution: float = Field(default=1.0, gt=0, description="Leiden resolution")
    min_size: int = Field(default=3, ge=1, description="smaller communities merge")
    max_size: int = Field(default=40, ge=2, description="larger communities split")
    seed: int = 0

    @field_validator("embedding")
    @classmethod
    def _loadable(cls, embedding: str) -> str:
        """Checked now, so an unusable model fails before ingest; a folder is kept resolved,
        so a resumed build compares it by path."""
        if embedding == TFIDF:
            return embedding
        folder = model_folder(embedding)
        return embedding if embedding == MINILM else str(folder.path)

    @property
    def edge_threshold(self) -> float:
        if self.threshold is not None:
            return self.threshold
        return TFIDF_THRESHOLD if self.embedding == TFIDF else DENSE_THRESHOLD


class Domains(BaseModel):
    """The partition: domain index -> tool names, and what the graph looked like."""

    tools: int
    edges: int
    domains: list[list[str]]

    def sizes(self) -> list[int]:
        return sorted((len(d) for d in self.domains), reverse=True)


@lru_cache(maxsize=1 << 16)
def tokens(text: str) -> tuple[str, ...]:
    """camelCase / snake_case / prose -> lower-case words, stop words removed. Cached:
    parameter names and descriptions repeat across a corpus's tools."""
    return tuple(
        w.lower() for w in _WORD.findall(text) if w.lower() not in _stop_words() and len(w) > 1
    )


def parameter_document(tool: ToolSpec) -> str:
    """The words of a tool's parameters: names, types (bound to the name) and descriptions."""
    parts: list[str] = []
    for name, schema in tool.parameters.get("properties", {}).items():
        words = tokens(name)
        parts += words
        if isinstance(schema, dict):
            kind = schema.get("type")
            if isinstance(kind, str) and words:
                parts.append(f"{'_'.join(words)}__{kind}")
            parts += tokens(str(schema.get("description", "")))
    return " ".join(parts)


def _vectors(docs: Sequence[str], max_df: float) -> sparse.csr_matrix:
    from sklearn.feature_extraction.text import TfidfVectorizer

    # Document-frequency pruning needs a corpus: below 50 tools every term is kept.
    vectorizer = TfidfVectorizer(
        analyzer=str.split,
        max_df=max_df if len(docs) > 50 else 1.0,
        sublinear_tf=True,
        dtype=np.float32,
    )
    if not any(docs):
        return sparse.csr_matrix((len(docs), 1), dtype=np.float32)
    return vectorizer.fit_transform(docs).tocsr()


def parameter_sentence(tool: ToolSpec) -> str:
    """A tool's parameters as prose for a sentence embedding: `order id (string): the id of
    the order; ...`; empty for a tool without parameters."""
    parts = []
    for name, schema in tool.parameters.get("properties", {}).items():
        words = " ".join(w.lower() for w in _WORD.findall(name))
        if isinstance(schema, dict):
            kind, text = schema.get("type"), str(schema.get("description", "")).strip()
            words += (f" ({kind})" if isinstance(kind, str) else "") + (f": {text}" if text else "")
        parts.append(words)
    return "; ".join(parts)


def _similar_pairs(
    tools: Sequence[ToolSpec], config: GraphConfig
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(rows, cols, similarities) of the tool pairs at or above the threshold, row < col."""
    if config.embedding == TFIDF:
        x = _vectors([parameter_document(t) for t in tools], config.max_df)
        sim = sparse.triu(x @ x.T, k=1, format="coo")
        keep = sim.data >= config.edge_threshold
        yield sim.row[keep], sim.col[keep], sim.data[keep]
        return
    vectors = SentenceEncoder(config.embedding).encode([parameter_sentence(t) for t in tools])
    yield from similar_pairs(vectors, config.edge_threshold)


def similarity_graph(tools: Sequence[ToolSpec], config: GraphConfig) -> rx.PyGraph:
    """rustworkx graph, node i = tools[i], edge weight = cosine similarity >= threshold."""
    graph = rx.PyGraph(multigraph=False)
    graph.add_nodes_from(range(len(tools)))
    for rows, cols, sims in _similar_pairs(tools, config):
        graph.add_edges_from(
            zip(rows.tolist(), cols.tolist(), sims.astype(float).tolist(), strict=True)
        )
    return graph


def _leiden(
    n: int, edges: list[tuple[int, int]], weights: list[float], resolution: float, seed: int
) -> list[int]:
    g = igraph.Graph(n=n, edges=edges)
    previous = igraph.set_random_number_generator(random.Random(seed))
    try:
        parts = g.community_leiden(
            objective_function="modularity",
            weights=weights or None,
            resolution=resolution,
            n_iterations=-1,
        )
    finally:
        igraph.set_random_number_generator(previous or random)
    return list(parts.membership)


def detect_domains(tools: Sequence[ToolSpec], config: GraphConfig | None = None) -> Domains:
    """Partition tools into domains within [min_size, max_size] (where the corpus allows)."""
    config = config or GraphConfig()
    graph = similarity_graph(tools, config)
    edges = [(a, b) for a, b in graph.edge_list()]
    weights = [float(w) for w in graph.edges()]
    membership = _leiden(len(tools), edges, weights, config.resolution, config.seed)
    groups: dict[int, list[int]] = defaultdict(list)
    for node, community in enumerate(membership):
        groups[community].append(node)
    parts = _split_large(list(groups.values()), graph, config)
    parts = _merge_small(parts, graph, tools, config)
    named = sorted(sorted(tools[i].name for i in part) for part in parts)
    return Domains(tools=len(tools), edges=graph.num_edges(), domains=named)


def _split_large(parts: list[list[int]], graph: rx.PyGraph, config: GraphConfig) -> list[list[int]]:
    out: list[list[int]] = []
    stack = [sorted(p) for p in parts]
    while stack:
        part = stack.pop()
        if len(part) <= config.max_size:
            out.append(part)
            continue
        index = {node: i for i, node in enumerate(part)}
        sub = graph.subgraph(part)
        sub_edges = list(sub.edge_list())
        membership = _leiden(
            len(part),
            sub_edges,
            [float(w) for w in sub.edges()],
            config.resolution * 4,
            config.seed,
        )
        pieces: dict[int, list[int]] = defaultdict(list)
        for node in part:
            pieces[membership[index[node]]].append(node)
        if len(pieces) == 1:  # no structure left: cut deterministically
            pieces = {
                i: part[i : i + config.max_size] for i in range(0, len(part), config.max_size)
            }
        stack.extend(sorted(p) for p in pieces.values())
    return out


def _merge_small(
    parts: list[list[int]], graph: rx.PyGraph, tools: Sequence[ToolSpec], config: GraphConfig
) -> list[list[int]]:
    """Fold each community below min_size into the one it is best connected to, else the one
    whose tools' names and descriptions are most similar (which also places isolated tools)."""
    big = [p for p in parts if len(p) >= config.min_size]
    small = [p for p in parts if len(p) < config.min_size]
    if not small:
        return big
    if not big:  # nothing to merge into
        return _pack(sorted(i for p in small for i in p), config)
    owner = {node: k for k, part in enumerate(big) for node in part}
    text = _vectors([f"{t.name} {t.description}" for t in tools], 1.0)
    small = sorted(small, key=lambda p: p[0])
    scores = (_mean_rows(small, text) @ _mean_rows(big, text).T).toarray()  # small x big
    overflow: list[int] = []
    for row, part in enumerate(small):
        links: dict[int, float] = defaultdict(float)
        for node in part:
            for _, other, weight in graph.out_edges(node):
                if other in owner:
                    links[owner[other]] += float(weight)
        open_ = [k for k in links if len(big[k]) + len(part) <= config.max_size]
        if open_:
            target = max(open_, key=lambda k: (links[k], -k))
        else:
            order = np.argsort(-scores[row], kind="stable")
            target = next((int(k) for k in order if len(big[k]) + len(part) <= config.max_size), -1)
            if target < 0:  # every similar domain is full
                overflow.extend(part)
                continue
        big[target].extend(part)
        for node in part:
            owner[node] = target
    return big + _pack(sorted(overflow), config)


def _pack(nodes: list[int], config: GraphConfig) -> list[list[int]]:
    """Chunks of at most max_size, the last two balanced so none falls below min_size."""
    chunks = [nodes[i : i + config.max_size] for i in range(0, len(nodes), config.max_size)]
    if len(chunks) > 1 and len(chunks[-1]) < config.min_size:
        both = chunks.pop() + chunks.pop()
        half = len(both) // 2
        chunks += [both[:half], both[half:]]
    return chunks


def _mean_rows(parts: list[list[int]], x: sparse.csr_matrix) -> sparse.csr_matrix:
    """Row k = the mean of x's rows in parts[k] (one sparse product for all parts)."""
    rows = [k for k, part in enumerate(parts) for _ in part]
    cols = [i for part in parts for i in part]
    vals = [1.0 / len(part) for part in parts for _ in part]
    pick = sparse.csr_matrix((vals, (rows, cols)), shape=(len(parts), x.shape[0]), dtype=np.float32)
    return (pick @ x).tocsr()
