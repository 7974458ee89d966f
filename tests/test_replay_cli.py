"""`pipeline replay`: τ-bench-format task files replayed on a vertical domain."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from agentscaler.domains.retail import DATA
from agentscaler.domains.tau.tasks import load_tau_tasks
from agentscaler.pipeline.cli import main
from agentscaler.runtime import UserError

REPLAY = Path(__file__).parent / "data" / "derived" / "tau-bench_gold_replay_dev.jsonl"


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
