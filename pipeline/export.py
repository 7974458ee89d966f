"""Accepted trajectories as an SFT dataset, in the shape Hugging Face users feed to TRL.

One JSONL row per trajectory: `messages` (system / user / assistant with `tool_calls` / tool, as
OpenAI chat messages) and `tools` (the domain's tool entries), plus `task_id`, `trial`, `domain`
and `stage` (general or vertical: the two-stage trainer's stage files). `tools` and every tool
call's `arguments` are JSON strings: Arrow would merge the differing tool schemas of different
rows into one struct and fill the missing keys with nulls, which then render into the training
text. Rows split into train and validation by task, so no task is in both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, Field

from agentscaler.pipeline.files import write_atomic
from agentscaler.pipeline.filter import Verdict
from agentscaler.pipeline.gc_pause import gc_paused
from agentscaler.pipeline.rundir import (
    DomainTools,
    StageTag,
    read_domains,
    read_records,
    stable_hash,
)
from agentscaler.runtime import Trajectory, UserError


class ExportConfig(BaseModel):
    validation_share: float = Field(default=0.05, ge=0, le=1)
    seed: str = ""


def sft_row(record: Mapping[str, Any], tools_json: str, stage: StageTag) -> dict[str, Any]:
    """One training row from a trajectory record (its JSON form); a message without text gets
    "" (chat templates test `content`)."""
    messages = []
    for message in record["messages"]:
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
        "tools": tools_json,
        "task_id": record["task_id"],
        "trial": record["trial"],
        "domain": record["domain"],
        "stage": stage,
    }


def _held_out(task_id: str, config: ExportConfig) -> bool:
    return stable_hash(f"{config.seed}/{task_id}") < config.validation_share * 2**64


def export_sft(
    trajectories: Iterable[Trajectory],
    tools: Mapping[str, Sequence[Mapping[str, Any]]],
    stage_of: Callable[[str], StageTag],
    out_dir: Path,
    config: ExportConfig | None = None,
) -> dict[str, int]:
    """Write `{stage}/{train,validation}.jsonl` under `out_dir`; rows per file, by file name.
    Rows are sorted by task and trial, so exporting the same trajectories gives the same bytes,
    whatever order the shards wrote them in."""
    return _export((t.model_dump() for t in trajectories), tools, stage_of, out_dir, config)


def _export(
    records: Iterable[Mapping[str, Any]],
    tools: Mapping[str, Sequence[Mapping[str, Any]]],
    stage_of: Callable[[str], StageTag],
    out_dir: Path,
    config: ExportConfig | None,
) -> dict[str, int]:
    config = config or ExportConfig()
    tools_json: dict[str, str] = {}  # one serialization per domain, not per row
    files: dict[str, list[tuple[tuple[str, int], bytes]]] = {}
    for record in records:  # rows are kept as bytes, not as trajectories
        domain = record["domain"]
        if domain not in tools_json:
            tools_json[domain] = orjson.dumps(list(tools[domain])).decode()
        stage = stage_of(domain)
        split = "validation" if _held_out(record["task_id"], config) else "train"
        row = orjson.dumps(sft_row(record, tools_json[domain], stage)) + b"\n"
        files.setdefault(f"{stage}/{split}.jsonl", []).append(
            ((record["task_id"], record["trial"]), row)
        )
    for name, rows in files.items():
        write_atomic(out_dir / name, b"".join(row for _, row in sorted(rows)))
    return {name: len(rows) for name, rows in sorted(files.items())}


def export_run(
    run_dir: Path,
    config: ExportConfig | None = None,
    domains: Mapping[str, DomainTools] | None = None,
) -> dict[str, int]:
    """`pipeline export`: the trajectories the filter accepted -> sft/{stage}/{split}.jsonl
    (`domains`: `read_domains(run_dir)`, when the caller has read it already)."""
    verdicts = run_dir / "filter" / "verdicts.jsonl"
    if not verdicts.exists():
        raise UserError(f"{verdicts} does not exist; run `pipeline filter` first")
    accepted = set()
    for line in verdicts.read_bytes().splitlines():
        verdict = Verdict.model_validate_json(line)
        if verdict.accepted:
            accepted.add((verdict.task_id, verdict.trial))
    domains = domains if domains is not None else read_domains(run_dir)
    out = run_dir / "sft"
    for stale in out.glob("*/*.jsonl"):  # a file this export has no rows for must not linger
        stale.unlink()
    with gc_paused():
        counts = _export(  # records as read: the filter validated them already
            (r for _, r in read_records(run_dir) if (r["task_id"], r["trial"]) in accepted),
            {name: d.tools for name, d in domains.items()},
            lambda domain: domains[domain].stage,
            out,
            config,
        )
    write_atomic(out / "counts.json", orjson.dumps(counts, option=orjson.OPT_INDENT_2))
    return counts
