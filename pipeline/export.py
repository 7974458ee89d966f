"""Accepted trajectories as an SFT dataset, in the shape Hugging Face users feed to TRL.

One JSONL row per trajectory: `messages` (system / user / assistant with `tool_calls` / tool, as
OpenAI chat messages) and `tools` (the domain's tool entries), plus `task_id`, `trial`, `domain`
and `stage` (general or vertical: the two-stage trainer's stage files). `tools` and every tool
call's `arguments` are JSON strings: Arrow would merge the differing tool schemas of different
rows into one struct and fill the missing keys with nulls, which then render into the training
text. Rows split into train and validation by task, so no task is in both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field

from agentscaler.pipeline.files import write_atomic
from agentscaler.runtime import Trajectory

StageTag = Literal["general", "vertical"]


class ExportConfig(BaseModel):
    validation_share: float = Field(default=0.05, ge=0, le=1)
    seed: str = ""


def sft_row(
    trajectory: Trajectory, tools: Sequence[Mapping[str, Any]], stage: StageTag
) -> dict[str, Any]:
    """One training row; a message without text gets "" (chat templates test `content`)."""
    messages = []
    for message in trajectory.messages:
        row: dict[str, Any] = {"role": message["role"], "content": message.get("content") or ""}
        if message.get("tool_calls"):
            row["tool_calls"] = [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {
                        "name": call["function"]["name"],
                        "arguments": call["function"]["arguments"] or "{}",
                    },
                }
                for call in message["tool_calls"] or []
            ]
        if message["role"] == "tool":
            row["tool_call_id"] = message.get("tool_call_id", "")
            row["name"] = message.get("name", "")
        messages.append(row)
    return {
        "messages": messages,
        "tools": orjson.dumps(list(tools)).decode(),
        "task_id": trajectory.task_id,
        "trial": trajectory.trial,
        "domain": trajectory.domain,
        "stage": stage,
    }


def _held_out(task_id: str, config: ExportConfig) -> bool:
    digest = hashlib.sha256(f"{config.seed}/{task_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < config.validation_share * 2**64


def export_sft(
    trajectories: Iterable[Trajectory],
    tools: Mapping[str, Sequence[Mapping[str, Any]]],
    stage_of: Callable[[str], StageTag],
    out_dir: Path,
    config: ExportConfig | None = None,
) -> dict[str, int]:
    """Write `{stage}/{train,validation}.jsonl` under `out_dir`; rows per file, by file name.
    Rows are sorted by task and trial, so exporting the same trajectories gives the same bytes."""
    config = config or ExportConfig()
    files: dict[str, list[bytes]] = {}
    for trajectory in sorted(trajectories, key=lambda t: t.key):
        stage = stage_of(trajectory.domain)
        split = "validation" if _held_out(trajectory.task_id, config) else "train"
        row = sft_row(trajectory, tools[trajectory.domain], stage)
        files.setdefault(f"{stage}/{split}.jsonl", []).append(orjson.dumps(row) + b"\n")
    for name, lines in files.items():
        write_atomic(out_dir / name, b"".join(lines))
    return {name: len(lines) for name, lines in sorted(files.items())}
