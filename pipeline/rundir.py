"""Where each stage of a run keeps its files, and reading them back for the stages after it.

corpus/ graph/ domains/      environment construction (`pipeline build`)
tasks/tasks.jsonl            generated tasks, with gold calls and hashes
tasks/vertical-shard-I-of-N.jsonl   the vertical domains' training tasks, gold hashes filled in
simulate/domains-shard-I-of-N.jsonl per simulated domain: its stage tag and the agent's tools
trajectories/shard-I-of-N.jsonl     the sessions
events/shard-I-of-N.jsonl           the run events

Every simulate shard (one process each) writes files of its own, so shards running at once
never rewrite each other's; a shard run again adds to its files (`merge_jsonl`), so simulating
a run in parts keeps every part. The stages after simulate read all shards' files.
filter/verdicts.jsonl, filter/funnel.json
sft/{general,vertical}/{train,validation}.jsonl
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import orjson
from pydantic import BaseModel

from agentscaler.pipeline.files import write_jsonl
from agentscaler.runtime import Task, Trajectory, UserError, load_tasks

M = TypeVar("M", bound=BaseModel)

StageTag = Literal["general", "vertical"]
SHARD_FILE = re.compile(r"shard-(\d+)-of-(\d+)\.jsonl")


class DomainTools(BaseModel):
    """One line of simulate/domains-shard-I-of-N.jsonl."""

    domain: str
    stage: StageTag
    tools: list[dict[str, Any]]


def stable_hash(text: str) -> int:
    """A hash of a task id that every process and machine agrees on (shards, splits)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def merge_jsonl(path: Path, records: Sequence[M], model: type[M], key: Callable[[M], str]) -> None:
    """Write `records` to a JSONL file its shard owns, keeping the earlier records of other keys."""
    earlier = (
        [model.model_validate_json(line) for line in path.read_bytes().splitlines()]
        if path.exists()
        else []
    )
    merged = {key(r): r for r in earlier} | {key(r): r for r in records}
    write_jsonl(path, [merged[k] for k in sorted(merged)])


def read_tasks(run_dir: Path) -> dict[str, Task]:
    """Every task of the run (generated and vertical), by id."""
    tasks: dict[str, Task] = {}
    folder = run_dir / "tasks"
    for path in [folder / "tasks.jsonl", *sorted(folder.glob("vertical-*.jsonl"))]:
        if path.exists():
            tasks.update((t.id, t) for t in load_tasks(path.read_bytes(), str(path)))
    return tasks


def read_domains(run_dir: Path) -> dict[str, DomainTools]:
    """Every simulated domain's stage and tools, over all shards."""
    paths = sorted((run_dir / "simulate").glob("domains-*.jsonl"))
    if not paths:
        raise UserError(f"{run_dir / 'simulate'} holds no domains; run `pipeline simulate` first")
    return {
        d.domain: d
        for path in paths
        for d in (DomainTools.model_validate_json(line) for line in path.read_bytes().splitlines())
    }


def shard_files(run_dir: Path) -> list[Path]:
    folder = run_dir / "trajectories"
    return sorted(p for p in folder.glob("shard-*.jsonl") if SHARD_FILE.fullmatch(p.name))


def read_records(run_dir: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """The trajectory records of every shard, as JSON objects with their `file:line`. A torn
    last line (a shard killed mid-write, not yet resumed) is left out; a key in two shards is an
    error, never merged."""
    seen: dict[tuple[str, int], str] = {}
    for path in shard_files(run_dir):
        data = path.read_bytes()
        for no, line in enumerate(data[: data.rfind(b"\n") + 1].splitlines(), 1):
            try:
                record = orjson.loads(line)
                key = (record["task_id"], record["trial"])
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                raise UserError(f"{path}:{no}: not a trajectory: {exc}") from exc
            if key in seen:
                raise UserError(f"{path}:{no}: trajectory {key} is also in {seen[key]}")
            seen[key] = path.name
            yield f"{path}:{no}", record


def read_trajectories(run_dir: Path) -> Iterator[Trajectory]:
    """`read_records`, each validated as a `Trajectory`; a bad one names its file and line."""
    for where, record in read_records(run_dir):
        try:
            yield Trajectory.model_validate(record)
        except ValueError as exc:
            raise UserError(f"{where}: not a trajectory: {exc}") from exc
