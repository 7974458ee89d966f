"""`pipeline replay`: τ-bench-format task files replayed on a vertical domain."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from agentscaler.domains.retail import DATA
from agentscaler.domains.tau.tasks import load_tau_tasks
from agentscaler.domains.telecom.replay import task_of
from agentscaler.pipeline.cli import main
from agentscaler.runtime import UserError

DERIVED = Path(__file__).parent / "data" / "derived"
REPLAY = DERIVED / "tau-bench_gold_replay_dev.jsonl"
TELECOM = DERIVED / "tau2-telecom_gold_replay_small.jsonl"


def test_replay_cli_writes_upstream_shaped_lines(tmp_path: Path) -> None:
    """`pipeline replay` on a τ-bench task file: one line per task, equal to τ-bench's own."""
    out = tmp_path / "replay.jsonl"
    argv = ["replay", "--domain", "retail", "--tasks", str(DATA / "tasks_dev.jsonl")]
    assert main([*argv, "--out", str(out)]) == 0
    expected = {
        (r["split"], r["task_index"]): r
        for r in map(orjson.loads, REPLAY.read_bytes().splitlines())
    }
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(lines) == 20
    assert all(line == expected[("dev", line["task_index"])] for line in lines)


def test_a_bad_task_line_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "tasks_test.jsonl"
    good = (DATA / "tasks_dev.jsonl").read_bytes().splitlines()[0]
    bad.write_bytes(good + b'\n{"task_index": 1, "instruction": "x"}\n')
    with pytest.raises(UserError, match=r"tasks_test.jsonl, line 2: KeyError: 'actions'"):
        load_tau_tasks(bad, "retail", "test")
    assert (
        main(["replay", "--domain", "retail", "--tasks", str(bad), "--out", str(tmp_path / "o")])
        == 2
    )


def test_replay_cli_reproduces_telecom_records(tmp_path: Path) -> None:
    """`pipeline replay --domain telecom` on τ² tasks (here rebuilt from the small replay file)."""
    records = [orjson.loads(line) for line in TELECOM.read_bytes().splitlines()]
    tasks = tmp_path / "tasks_small.json"
    tasks.write_bytes(orjson.dumps([task_of(r) for r in records]))
    out = tmp_path / "replay.jsonl"
    argv = ["replay", "--domain", "telecom", "--tasks", str(tasks), "--out", str(out)]
    assert main([*argv, "--split", "small"]) == 0
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(lines) == len(records) == 20
    for line, record in zip(lines, records, strict=True):
        assert line["source_file"] == "tasks_small.json"
        ours = {k: v for k, v in line.items() if k not in ("source_file", "splits")}
        assert ours == {k: v for k, v in record.items() if k not in ("source_file", "splits")}
