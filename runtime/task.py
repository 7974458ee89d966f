"""Tasks: what the simulated user wants, and the gold answer it is verified against."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import UserError


class GoldCall(BaseModel):
    """One call of the gold solution. `requestor` says which side makes it (dual control)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    requestor: Literal["agent", "user"] = "agent"


class EnvCall(BaseModel):
    """A call of an environment function (`Domain.functions`) on one side of a session."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    side: Literal["agent", "user"]
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class EnvAssertion(EnvCall):
    """A check run when a session ends: the function's result must equal `expected`."""

    expected: Any = True


class Task(BaseModel):
    """A verifiable task: the user's intent, gold calls and outputs, and the gold final hash."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    domain: str
    intent: str
    persona: str | None = None
    user_id: str | None = None  # the user the task is about, when the domain has users
    gold_calls: tuple[GoldCall, ...] = ()
    gold_outputs: tuple[str, ...] = ()
    gold_hash: str | None = None  # sha256 state hash after the gold calls; filled by replay
    gold_user_hash: str | None = None  # the user's side too, for dual-control tasks
    # Indices of gold calls that fail when replayed (benchmark task defects: τ-bench has a few);
    # a faithful agent's call fails there too, so exact match expects only the others.
    gold_failures: tuple[int, ...] = ()
    split: str | None = None
    initialization: tuple[EnvCall, ...] = ()  # run before the session starts, in order
    assertions: tuple[EnvAssertion, ...] = ()  # run after it ends; results in the trajectory


def load_tasks(text: str | bytes, source: str) -> list[Task]:
    """Parse a JSON list (or JSONL) of tasks; a bad record names the file, index and field."""
    try:
        records = orjson.loads(text)
    except orjson.JSONDecodeError:
        lines = [ln for ln in (text.decode() if isinstance(text, bytes) else text).splitlines()]
        records = []
        for no, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                records.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise UserError(f"{source}:{no}: not valid JSON: {exc}") from exc
    if not isinstance(records, list):
        raise UserError(f"{source}: expected a list of tasks, got {type(records).__name__}")
    tasks = []
    for i, record in enumerate(records):
        try:
            tasks.append(Task.model_validate(record))
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise UserError(f"{source}: task #{i}: field {loc!r}: {err['msg']}") from exc
    ids = [t.id for t in tasks]
    if len(set(ids)) != len(ids):
        raise UserError(
            f"{source}: duplicate task ids {sorted({i for i in ids if ids.count(i) > 1})}"
        )
    return tasks


def with_gold_hash(
    task: Task,
    final_hash: str,
    user_final_hash: str | None = None,
    failures: tuple[int, ...] = (),
) -> Task:
    """The task with its gold final-state hashes filled in (from a replay of its gold calls)."""
    return task.model_copy(
        update={
            "gold_hash": final_hash,
            "gold_user_hash": user_final_hash,
            "gold_failures": failures,
        }
    )


def assign_split(
    tasks: Iterable[Task],
    *,
    test_fraction: float = 0.0,
    test_ids: Collection[str] = (),
    seed: str = "",
) -> list[Task]:
    """The tasks with `split` set: "test" for the held-out ones, "train" for the others.

    A task is held out when its id is listed, or when a hash of `seed` and its id falls under
    `test_fraction`: decided by the id alone, so adding or removing tasks never moves another
    task across the split, and any process recomputes the same split.
    """
    if not 0.0 <= test_fraction <= 1.0:
        raise UserError(f"test_fraction must be within [0, 1], got {test_fraction}")
    listed = set(test_ids)

    def held_out(task_id: str) -> bool:
        digest = hashlib.sha256(f"{seed}/{task_id}".encode()).digest()
        return task_id in listed or int.from_bytes(digest[:8], "big") < test_fraction * 2**64

    return [t.model_copy(update={"split": "test" if held_out(t.id) else "train"}) for t in tasks]
