"""`pipeline build`: every construction stage at once, with a summary; deterministic outputs."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from agentscaler.domains.seed import pool
from agentscaler.pipeline.cli import main

SAMPLES = Path(__file__).parent / "data" / "corpora"


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_build_is_byte_identical_for_any_worker_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same inputs and seed give the same bytes in every output file, whether domains are
    built in this process or in two workers; the summary agrees with the files."""
    runs = {}
    for workers in ("1", "2"):
        run_dir = tmp_path / f"w{workers}"
        argv = ["build", "--corpus", str(SAMPLES), "--include-eval", "--run-dir", str(run_dir)]
        assert main([*argv, "--workers", workers, "--per-domain", "4"]) == 0
        runs[workers] = _files(run_dir)
    assert runs["1"] == runs["2"]
    files = runs["1"]
    assert {
        "corpus/tools.jsonl",
        "graph/domains.json",
        "domains/specs.jsonl",
        "domains/check.json",
        "tasks/tasks.jsonl",
        "summary.json",
    } <= set(files)
    summary = orjson.loads(files["summary.json"])
    assert summary["tools_kept"] == len(files["corpus/tools.jsonl"].splitlines())
    assert summary["domains_kept"] == len(files["domains/specs.jsonl"].splitlines())
    assert summary["tasks"] == len(files["tasks/tasks.jsonl"].splitlines()) > 0
    assert summary["tasks_per_domain"]["max"] <= 4
    shown = capsys.readouterr().out
    for row in ("ingest", "graph", "domains", "tasks", "seconds:"):
        assert row in shown


def test_a_different_seed_gives_different_tasks(tmp_path: Path) -> None:
    argv = ["build", "--corpus", str(SAMPLES), "--include-eval", "--workers", "1"]
    assert main([*argv, "--run-dir", str(tmp_path / "a")]) == 0
    assert main([*argv, "--run-dir", str(tmp_path / "b"), "--seed", "1"]) == 0
    a, b = (tmp_path / d / "tasks" / "tasks.jsonl" for d in "ab")
    assert a.read_bytes() != b.read_bytes()


def test_seed_values_do_not_depend_on_the_clock() -> None:
    """Faker's dates run up to "now" by default; ours end at a fixed date, so the seed rows
    (and every gold hash) are the same tomorrow."""
    before = pool("date"), pool("time")
    pool.cache_clear()
    time.sleep(1.1)
    assert (pool("date"), pool("time")) == before


def test_model_passes_need_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["build", "--corpus", str(SAMPLES), "--run-dir", str(tmp_path), "--llm-edges"]
    assert main(argv) == 2
    assert "--llm MODEL" in capsys.readouterr().out


def test_bad_flags_name_themselves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["build", "--corpus", str(SAMPLES), "--run-dir", str(tmp_path), "--workers", "1"]
    assert main([*argv, "--per-domain", "0"]) == 2
    assert "--per-domain: Input should be greater than or equal to 1" in capsys.readouterr().out
    assert main([*argv, "--min-calls", "5", "--max-calls", "2"]) == 2
    assert "min_calls 5 exceeds max_calls 2" in capsys.readouterr().out
