"""The README's embedding examples run as written, and `pipeline` runs and resumes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agentscaler.pipeline.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def run_block(index: int, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = python_blocks()[index]
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_readme_scheduler_example(tmp_path: Path) -> None:
    """The embedding example runs as written and leaves one trajectory per example task."""
    result = run_block(0, tmp_path)
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "runs/readme/trajectories/trajectories.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["task_id"] for line in lines) == [
        f"bookstore-{i}" for i in range(8)
    ]


def test_readme_toolset_example(tmp_path: Path) -> None:
    """The bring-your-own-Agent example runs as written."""
    result = run_block(1, tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(python_blocks()) == 2


def test_pipeline_runs_then_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`pipeline` lists its stages, simulates, and on a second run resumes with nothing to redo."""
    assert main(["--run-dir", str(tmp_path), "--trials", "2"]) == 0
    first = capsys.readouterr().out
    assert "simulate" in first and "16 trajectories written, 0 already present" in first
    assert main(["--run-dir", str(tmp_path), "--trials", "2"]) == 0
    assert "0 trajectories written, 16 already present" in capsys.readouterr().out
