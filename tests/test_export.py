"""The SFT export loads in Hugging Face `datasets` unchanged; no task in both splits."""

from __future__ import annotations

from pathlib import Path

import datasets
import orjson
import pytest

from agentscaler.pipeline.export import ExportConfig, export_sft
from agentscaler.pipeline.filter import filter_trajectories
from agentscaler.runtime import Environment, ErrorInjection, GoldAgent, ScriptedUser, Session, Task

pytestmark = pytest.mark.anyio


async def test_export_loads_in_datasets_and_splits_by_task(
    env: Environment, tasks: list[Task], tmp_path: Path
) -> None:
    kinds = {name: t.kind for name, t in env.tools.items()}
    runs = []
    for task in tasks:
        for trial in range(3):
            agent = GoldAgent(task, kinds, ErrorInjection(bad_argument=0.5), seed=str(trial))
            runs.append(await Session(task, env, agent, ScriptedUser(task), trial=trial).run())
    report = filter_trajectories(runs, {t.id: t for t in tasks}, {env.name: set(env.tools)})
    accepted = {(v.task_id, v.trial) for v in report.accepted}
    kept = [t for t in runs if t.key in accepted]
    tools = {env.name: [t.openai_schema() for t in env.tools.values()]}
    config = ExportConfig(validation_share=0.3, seed="s")
    counts = export_sft(kept, tools, lambda domain: "general", tmp_path, config)
    assert sum(counts.values()) == len(kept) > 0
    again = tmp_path / "again"
    export_sft(reversed(kept), tools, lambda domain: "general", again, config)
    for name in counts:  # idempotent, whatever the input order
        assert (tmp_path / name).read_bytes() == (again / name).read_bytes()
    files = {name.split("/")[1].removesuffix(".jsonl"): str(tmp_path / name) for name in counts}
    loaded = datasets.load_dataset("json", data_files=files, cache_dir=str(tmp_path / "hf"))
    rows = [row for split in loaded.values() for row in split]
    assert len(rows) == len(kept)
    first = rows[0]
    assert isinstance(first["tools"], str) and orjson.loads(first["tools"]) == tools[env.name]
    calls = [c for m in first["messages"] if m.get("tool_calls") for c in m["tool_calls"]]
    assert calls and all(isinstance(c["function"]["arguments"], str) for c in calls)
    if len(loaded) == 2:
        train = {row["task_id"] for row in loaded["train"]}
        assert not train & {row["task_id"] for row in loaded["validation"]}
