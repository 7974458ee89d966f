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
CORPUS = Path(__file__).parent / "data" / "corpora"


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


def test_pipeline_runs_every_stage_then_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pipeline` builds, simulates, filters, exports and trains both stages; run again, it
    keeps the build, the trajectories and the models and writes the same dataset; other build
    inputs are refused."""
    args = ["--run-dir", str(tmp_path), "--corpus", str(CORPUS), "--vertical", "telecom"]
    args += ["--train-steps", "2", "--train-stage2-steps", "1", "--train-rows", "16"]
    assert main([*args, "--trials", "1"]) == 0
    first = capsys.readouterr().out
    written = int(re.search(r"simulate: (\d+) trajectories written", first).group(1))
    assert written > 74  # telecom's 74 tasks and the generated ones
    assert "filter funnel" in first and "general/train.jsonl" in first
    assert "general 2 + vertical 1 steps" in first
    for stage in ("general", "vertical"):
        assert (tmp_path / "train" / stage / "model" / "model.safetensors").is_file()
        assert len((tmp_path / "train" / stage / "metrics.jsonl").read_text().splitlines()) >= 1
    dataset = {p: p.read_bytes() for p in sorted((tmp_path / "sft").rglob("*.jsonl"))}
    assert set(dataset) >= {
        tmp_path / "sft/general/train.jsonl",
        tmp_path / "sft/vertical/train.jsonl",
    }
    record = tmp_path / "build.json"  # as written before graph embeddings existed
    inputs = json.loads(record.read_text())
    assert inputs["graph"].pop("embedding") == "tfidf" and inputs["graph"]["threshold"] == 0.35
    record.write_text(json.dumps(inputs))
    assert main([*args, "--trials", "1", "--threshold", "0.35"]) == 0  # the default, explicit
    again = capsys.readouterr().out
    assert "done earlier, kept" in again
    assert f"0 written, {written} already present" in again
    assert "train    │ done earlier, kept" in again
    assert {p: p.read_bytes() for p in sorted((tmp_path / "sft").rglob("*.jsonl"))} == dataset
    assert main([*args, "--seed", "1"]) == 2
    assert "holds a build of other inputs" in capsys.readouterr().out
