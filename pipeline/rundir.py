"""Where each stage of a run keeps its files, and reading them back for the stages after it.

corpus/ graph/ domains/      environment construction (`pipeline build`)
tasks/tasks.jsonl            generated tasks, with gold calls and hashes
tasks/vertical.jsonl         the vertical domains' training tasks, gold hashes filled in
simulate/domains.jsonl       per simulated domain: its stage tag and the tools the agent saw
trajectories/shard-I-of-N.jsonl   one file per simulate shard (one process each)
filter/verdicts.jsonl, filter/funnel.json
sft/{general,vertical}/{train,validation}.jsonl
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel

from agentscaler.runtime import Task, Trajectory, UserError, load_tasks

StageTag = Literal["general", "vertical"]
SHARD_FILE = re.compile(r"shard-(\d+)-of-(\d+)\.jsonl")


class DomainTools(BaseModel):
    """One line of simulate/domains.jsonl."""

    domain: str
    stage: StageTag
    tools: list[dict[str, Any]]


def tasks_files(run_dir: Path) -> list[Path]:
    names = ("tasks.jsonl", "vertical.jsonl")
    return [p for p in (run_dir / "tasks" / n for n in names) if p.exists()]


def read_tasks(run_dir: Path) -> dict[str, Task]:
    """Every task of the run (generated and vertical), by id."""
    tasks: dict[str, Task] = {}
    for path in tasks_files(run_dir):
        for task in load_tasks(path.read_bytes(), str(path)):
            tasks[task.id] = task
    return tasks


def read_domains(run_dir: Path) -> dict[str, DomainTools]:
    path = run_dir / "simulate" / "domains.jsonl"
    if not path.exists():
        raise UserError(f"{path} does not exist; run `pipeline simulate` first")
    lines = path.read_bytes().splitlines()
    return {d.domain: d for d in (DomainTools.model_validate_json(line) for line in lines)}


def shard_files(run_dir: Path) -> list[Path]:
    folder = run_dir / "trajectories"
    return sorted(p for p in folder.glob("shard-*.jsonl") if SHARD_FILE.fullmatch(p.name))


def read_records(run_dir: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """The trajectory records of every shard, as JSON objects with their `file:line`. A torn
    last line (a shard killed
    mid-write, not yet resumed) is left out; a key in two shards is an error, never merged."""
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
