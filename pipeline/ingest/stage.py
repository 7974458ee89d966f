"""The ingest stage: read every tool-spec file under a corpus root, normalize, dedupe, report.

Every bad record is reported with file, record and reason, counted, and skipped; the rest goes
on. Sources are tagged by corpus, and benchmarks that users evaluate on carry an `eval` tag, so
a build can exclude them; the default general-domain build excludes the benchmarks our own
evaluation uses (tau-bench, tau2-bench, ACEBench: the paper's), keeping evaluation tools out of
training environments. Output order is deterministic: same inputs, byte-identical files.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, Field

from agentscaler.runtime import UserError

from ..files import write_atomic, write_jsonl
from ..parallel import forks, ordered_map
from .normalize import SchemaError, identifier, normalize_schema
from .readers import RawReject, RawTool, detect_format, reader, runtime_readers
from .toolspec import Rejection, Source, ToolSpec

# Benchmarks users evaluate on; ours (the paper's) are excluded from general builds by default.
EVAL_BENCHMARKS = {"tau-bench", "tau2-bench", "acebench", "bfcl"}
DEFAULT_EXCLUDE = ("eval:tau-bench", "eval:tau2-bench", "eval:acebench")
_SUFFIXES = (".json", ".jsonl")


class IngestConfig(BaseModel):
    """What to read and what to leave out."""

    corpus_root: Path
    exclude_tags: tuple[str, ...] = DEFAULT_EXCLUDE
    formats: dict[str, str] = Field(default_factory=dict)  # relative path glob -> format name


class SourceCounts(BaseModel):
    files: int = 0
    read: int = 0
    kept: int = 0
    merged: int = 0
    excluded: int = 0
    rejected: dict[str, int] = Field(default_factory=dict)


class IngestReport(BaseModel):
    """Per-source counts, the corpus and the rejections."""

    sources: dict[str, SourceCounts]
    tools: list[ToolSpec]
    rejections: list[Rejection]

    def write(self, out_dir: Path) -> None:
        """tools.jsonl, rejections.jsonl, report.json, each written atomically."""
        write_jsonl(out_dir / "tools.jsonl", self.tools)
        write_jsonl(out_dir / "rejections.jsonl", self.rejections)
        counts = {k: v.model_dump() for k, v in self.sources.items()}
        write_atomic(
            out_dir / "report.json",
            orjson.dumps(counts, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS),
        )


def tags_for(corpus: str) -> tuple[str, ...]:
    return (
        (f"corpus:{corpus}", f"eval:{corpus}")
        if corpus in EVAL_BENCHMARKS
        else (f"corpus:{corpus}",)
    )


def _records(data: bytes) -> Iterator[tuple[str, Any] | RawReject]:
    """Records of a JSON file (a list's items, or the object) or a JSONL file (its lines).

    A file that is neither (its first line is not JSON either) is one `invalid_json` rejection
    carrying the parser's position, not one per line of a pretty-printed document.
    """
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as whole:
        lines = data.splitlines()
        first = next((ln for ln in lines if ln.strip()), b"")
        try:
            orjson.loads(first)
        except orjson.JSONDecodeError:
            yield RawReject("file", "invalid_json", f"not JSON nor JSON Lines: {whole}")
            return
        for no, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                yield (f"line {no}", orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                yield RawReject(f"line {no}", "invalid_json", str(exc))
        return
    if isinstance(doc, list):
        yield from ((f"#{i}", item) for i, item in enumerate(doc))
    else:
        yield ("", doc)


def _format_for(rel: str, first: Any, config: IngestConfig) -> str | None:
    for pattern, name in config.formats.items():
        if Path(rel).match(pattern):
            return name
    return detect_format(first)


def _read_file(rel: str, data: bytes, config: IngestConfig) -> Iterator[RawTool | RawReject]:
    """A file's records through the reader its format names (each knows its record id)."""
    pending: list[RawReject] = []  # bad lines before the first good one
    spec = None
    for item in _records(data):
        if isinstance(item, RawReject):
            if spec is None and item.record != "file":
                pending.append(item)
                continue
            yield item
            continue
        if spec is None:
            fmt = _format_for(rel, item[1], config)
            if fmt is None:
                return  # not a tool-spec file (databases, tasks, answers): skipped, not rejected
            spec = reader(fmt)
            yield from pending
        rid, record = item
        try:
            yield from spec.read(record, rid or "record")
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            yield RawReject(rid, "malformed_record", f"{type(exc).__name__}: {exc}")


# (corpus, file, record, ToolSpec fields or (reason, detail)): a file's records as plain data,
# which a worker sends back cheaply (unpickling 15k ToolSpecs took 1.6 s: measured).
_Item = tuple[str, str, str, dict[str, Any] | tuple[str, str]]


def _file_items(job: tuple[Path, Path, IngestConfig]) -> list[_Item]:
    """One file read and normalized (the per-file, parallel part of ingest)."""
    root, path, config = job
    rel = path.relative_to(root).as_posix()
    corpus, file = rel.split("/", 1) if "/" in rel else (".", rel)
    out: list[_Item] = []
    for raw in _read_file(rel, path.read_bytes(), config):
        result: dict[str, Any] | tuple[str, str]
        if isinstance(raw, RawReject):
            result = (raw.reason, raw.detail)
        else:
            try:
                result = _spec_fields(raw)
            except SchemaError as exc:
                result = (exc.reason, str(exc))
        out.append((corpus, file, raw.record, result))
    return out


def _spec_fields(raw: RawTool) -> dict[str, Any]:
    """A ToolSpec's fields (all but the source), normalized."""
    if not isinstance(raw.name, str) or not raw.name.strip():
        raise SchemaError("missing_name", f"name is {raw.name!r}")
    params = {"type": "object", "properties": {}} if raw.parameters is None else raw.parameters
    parameters = normalize_schema(params, "parameters")
    if parameters.get("type") != "object":
        raise SchemaError("schema_not_object", f"parameters have type {parameters.get('type')!r}")
    parameters.setdefault("properties", {})
    returns_inferred = raw.returns is None or raw.returns == {}
    returns = (
        _infer_returns(raw.name) if returns_inferred else normalize_schema(raw.returns, "returns")
    )
    description = raw.description if isinstance(raw.description, str) else ""
    return {
        "name": identifier(raw.name),
        "original_name": raw.name,
        "description": " ".join(description.split()),
        "parameters": parameters,
        "returns": returns,
        "returns_inferred": returns_inferred,
    }


_LISTING = re.compile(r"^(list|search|find|query|browse|fetch_all|get_all)|s$", re.I)


def _infer_returns(name: str) -> dict[str, Any]:
    """The paper rewrites every spec with explicit outputs; absent one, a listing-style name
    returns an array of records and anything else one record."""
    words = identifier(name).lower()
    record = {"type": "object", "description": f"the result of {name}"}
    if _LISTING.search(words.split("_")[0]) or words.startswith(("list", "search", "find")):
        return {"type": "array", "items": record}
    return record


def _exact_key(t: ToolSpec) -> bytes:
    doc = {
        "name": t.name,
        "description": t.description,
        "parameters": t.parameters,
        "returns": t.returns,
    }
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).digest()


def _near_key(t: ToolSpec) -> tuple[str, str, str]:
    """Same name, same parameter names and types, same description words: one tool."""
    params = sorted((n, str(s.get("type"))) for n, s in t.parameters.get("properties", {}).items())
    words = " ".join(re.findall(r"[a-z0-9]+", t.description.lower()))
    return (t.name.lower(), repr(params), words)


def ingest(
    config: IngestConfig, workers: int = 1, meanwhile: Callable[[], object] | None = None
) -> IngestReport:
    """Read, normalize, dedupe and tag every tool spec under `config.corpus_root`.

    Files are read and normalized in `workers` processes, merged here in file order (the same
    output for any worker count); `meanwhile` runs in this process while they read (`pipeline
    build` imports the graph stage's scikit-learn then: ~3.5 s of CPU that would otherwise
    come after ingest)."""
    root = config.corpus_root
    if not root.is_dir():
        raise UserError(f"corpus root {root} is not a directory")
    counts: dict[str, SourceCounts] = defaultdict(SourceCounts)
    rejections: list[Rejection] = []
    kept: list[ToolSpec] = []
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in _SUFFIXES and p.is_file())
    seen_files: set[tuple[str, str]] = set()
    jobs = [(root, path, config) for path in files]
    # Workers that are not forks would not know the readers registered in this process.
    workers = workers if forks() or not runtime_readers() else 1
    for items in ordered_map(_file_items, jobs, workers, meanwhile):
        for corpus, file, record, result in items:
            tags = tags_for(corpus)
            source = Source(corpus=corpus, file=file, record=record, tags=tags)
            c = counts[corpus]
            if (corpus, file) not in seen_files:
                seen_files.add((corpus, file))
                c.files += 1
            c.read += 1
            if isinstance(result, tuple):
                reason, detail = result
                c.rejected[reason] = c.rejected.get(reason, 0) + 1
                rejections.append(Rejection(source=source, reason=reason, detail=detail))
            elif set(tags) & set(config.exclude_tags):
                c.excluded += 1
            else:
                kept.append(ToolSpec(**result, source=source))
    tools = _dedupe(kept, counts)
    for t in tools:
        counts[t.source.corpus].kept += 1
    return IngestReport(sources=dict(sorted(counts.items())), tools=tools, rejections=rejections)


def _dedupe(tools: Iterable[ToolSpec], counts: dict[str, SourceCounts]) -> list[ToolSpec]:
    """Fold exact and near duplicates into their first occurrence; make names unique."""
    by_key: dict[Any, int] = {}
    out: list[ToolSpec] = []
    merged: dict[int, list[Source]] = defaultdict(list)
    for t in tools:
        exact, near = _exact_key(t), _near_key(t)
        index = by_key.get(exact, by_key.get(near))
        if index is not None:
            merged[index].append(t.source)
            counts[t.source.corpus].merged += 1
            continue
        by_key[exact] = by_key[near] = len(out)
        out.append(t)
    names: Counter[str] = Counter()
    result = []
    for i, t in enumerate(out):
        names[t.name] += 1
        name = t.name if names[t.name] == 1 else f"{t.name}_{names[t.name]}"
        result.append(t.model_copy(update={"name": name, "merged_from": tuple(merged[i])}))
    return result
