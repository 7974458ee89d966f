"""`pipeline simulate / filter / export` over the vertical domains' shipped tasks: sharding,
resuming after SIGKILL, idempotent filter and export, and models that misbehave over HTTP."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agentscaler.pipeline.cli import main
from agentscaler.pipeline.rundir import read_tasks, read_trajectories

TELECOM = ["--no-generated", "--vertical", "telecom"]
CORPUS = Path(__file__).parent / "data" / "corpora"


def keys(run_dir: Path) -> list[tuple[str, int]]:
    return sorted(t.key for t in read_trajectories(run_dir))


def outputs(run_dir: Path) -> dict[str, str]:
    """Digests of everything filter and export wrote."""
    files = sorted((run_dir / "filter").glob("*")) + sorted((run_dir / "sft").rglob("*.jsonl"))
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def filter_and_export(run_dir: Path) -> None:
    assert main(["filter", "--run-dir", str(run_dir)]) == 0
    assert main(["export", "--run-dir", str(run_dir)]) == 0


def test_shards_split_the_tasks_and_merge_into_the_same_dataset(tmp_path: Path) -> None:
    """Two shards over generated and vertical domains write their own files, cover every
    (task, trial) once between them, and filter + export over them give byte-identical files
    to an unsharded run, each shard's domains judged with their own tools."""
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert main(["build", "--corpus", str(CORPUS), "--run-dir", str(whole)]) == 0
    for stage in ("domains", "tasks"):
        shutil.copytree(whole / stage, split / stage)
    run = ["simulate", "--vertical", "telecom", "--trials", "2"]
    assert main([*run, "--run-dir", str(whole)]) == 0
    for shard in ("0/2", "1/2"):
        assert main([*run, "--shard", shard, "--run-dir", str(split)]) == 0
    names = sorted(p.name for p in (split / "trajectories").iterdir())
    assert names == ["shard-0-of-2.jsonl", "shard-1-of-2.jsonl"]
    assert all((split / "trajectories" / n).stat().st_size > 0 for n in names)
    assert keys(split) == keys(whole)
    generated = {k for k in keys(whole) if not k[0].startswith("telecom/")}
    assert len(keys(whole)) == 74 * 2 + len(generated) and generated
    filter_and_export(whole)
    filter_and_export(split)
    assert outputs(split) == outputs(whole)
    verdicts = (split / "filter" / "verdicts.jsonl").read_text()
    assert "is not a tool of" not in verdicts


def test_a_run_simulated_in_parts_keeps_every_parts_domains(tmp_path: Path) -> None:
    """Simulating a build's domains one `--tasks` glob at a time, then filtering, judges each
    part's trajectories with its own domain's tools and gold, as one run would."""
    assert main(["build", "--corpus", str(CORPUS), "--run-dir", str(tmp_path)]) == 0
    domains = sorted(
        {json.loads(line)["domain"] for line in (tmp_path / "tasks/tasks.jsonl").open()}
    )
    assert len(domains) >= 2
    for domain in domains:
        part = ["simulate", "--vertical", "none", "--tasks", f"{domain}-*", "--trials", "1"]
        assert main([*part, "--run-dir", str(tmp_path)]) == 0
    assert main(["filter", "--run-dir", str(tmp_path)]) == 0
    verdicts = [json.loads(line) for line in (tmp_path / "filter" / "verdicts.jsonl").open()]
    assert {v["domain"] for v in verdicts} == set(domains)
    assert not [v for v in verdicts if v["stage"] == "validity"]


def test_resuming_with_another_shard_count_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["simulate", *TELECOM, "--tasks", "telecom/*[0-9]", "--run-dir", str(tmp_path)]
    assert main([*args, "--shard", "0/2"]) == 0
    assert main([*args, "--shard", "1/3"]) == 2
    assert "split into 2 shards" in capsys.readouterr().out
    assert main([*args, "--shard", "2/2"]) == 2
    assert "the index counts from 0" in capsys.readouterr().out


def test_dual_control_gold_state_accepts_a_faithful_agent(tmp_path: Path) -> None:
    """Without injected mistakes, sessions on telecom tasks whose gold calls are not
    interleaved between the two sides pass the state stage, the phone's state included."""
    run = ["simulate", *TELECOM, "--trials", "1", "--run-dir", str(tmp_path)]
    assert main([*run, "--bad-argument", "0", "--extra-read", "0", "--wrong-write", "0"]) == 0
    assert main(["filter", "--run-dir", str(tmp_path)]) == 0
    tasks = {i: t.model_dump() for i, t in read_tasks(tmp_path).items()}
    verdicts = [json.loads(line) for line in (tmp_path / "filter" / "verdicts.jsonl").open()]
    checked = 0
    for verdict in verdicts:
        task = tasks[verdict["task_id"]]
        assert task["gold_user_hash"]
        sides = [c["requestor"] for c in task["gold_calls"]]
        if "agent" in sides and "user" in sides[sides.index("agent") :]:
            continue  # the scripted user makes its calls before the agent's: order differs
        checked += 1
        assert verdict["stage"] != "state", verdict
    assert checked >= 40


@pytest.mark.slow
def test_sigkill_during_simulate_then_resume_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """A simulate process killed with SIGKILL mid-run, then run again, ends with exactly the
    trajectories of an uninterrupted run: 0 lost, 0 duplicated, no torn line; filter and export
    run twice give the same bytes."""
    run_dir = tmp_path / "run"
    shard_file = run_dir / "trajectories" / "shard-0-of-1.jsonl"
    command = [
        sys.executable, "-m", "agentscaler.pipeline.cli", "simulate", *TELECOM,
        "--trials", "3", "--concurrency", "16", "--agent-latency-s", "0.05",
        "--run-dir", str(run_dir),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if shard_file.exists() and shard_file.read_bytes().count(b"\n") >= 40:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written_before = shard_file.read_bytes().count(b"\n")
    assert 40 <= written_before < 74 * 3, "the kill must land mid-run"
    finish = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert finish.returncode == 0, finish.stderr
    lines = shard_file.read_bytes().splitlines()
    got = [(json.loads(line)["task_id"], json.loads(line)["trial"]) for line in lines]
    assert len(got) == len(set(got)) == 74 * 3
    ids = list(read_tasks(run_dir))
    assert sorted(got) == sorted((i, t) for i in ids for t in range(3))
    filter_and_export(run_dir)
    first = outputs(run_dir)
    filter_and_export(run_dir)
    assert outputs(run_dir) == first


def _call(name: str, arguments: str) -> dict[str, Any]:
    call = {"id": "c1", "type": "function", "function": {"name": name, "arguments": arguments}}
    return {"role": "assistant", "content": None, "tool_calls": [call]}


KINDS = ["not_json", "unknown_tool", "wrong_types", "endless", "http_500", "hang", "good"]


def test_misbehaving_models_end_sessions_with_reasons(tmp_path: Path, openai_server: Any) -> None:
    """Through two OpenAI-compatible fakes on loopback, sessions balanced over both, each
    session's agent misbehaves one way: tool-call arguments that are not JSON, an unknown tool,
    wrong argument types, endless text, HTTP 500 from every server, a server that hangs. Every
    session ends with its reason recorded, the run goes on and finishes, and the filter rejects
    what it must."""
    kinds: dict[str, str] = {}
    lock = threading.Lock()

    def script(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        intent = body["messages"][1]["content"]
        with lock:
            kind = kinds.setdefault(intent, KINDS[len(kinds) % len(KINDS)])
        replied = any(m["role"] == "tool" for m in body["messages"])
        match kind:
            case "not_json":
                return 200, _call("get_order_details", '{"order_id": ')
            case "unknown_tool":
                return 200, _call("launch_rocket", "{}")
            case "wrong_types":
                return 200, _call("get_order_details", '{"order_id": 12345}')
            case "endless":
                return 200, {"role": "assistant", "content": "and so on " * 20_000}
            case "http_500":
                return 500, {}
            case "hang":
                time.sleep(8)
                return 200, {"role": "assistant", "content": "too late"}
        if replied:
            return 200, {"role": "assistant", "content": "Your order is on its way."}
        return 200, _call("get_order_details", '{"order_id": "#W2378156"}')

    run_dir = tmp_path / "run"
    with openai_server(script) as (url_a, seen_a), openai_server(script) as (url_b, seen_b):
        args = [
            "simulate", "--no-generated", "--vertical", "retail", "--tasks", "retail/dev/1?",
            "--trials", "1", "--timeout-s", "5", "--max-attempts", "2",
            "--agent-request-timeout-s", "1",
            "--agent-model", "fake-model", "--agent-base-url", url_a, "--agent-base-url", url_b,
            "--run-dir", str(run_dir),
        ]  # fmt: skip
        started = time.monotonic()
        assert main(args) == 0
        assert time.monotonic() - started < 60
    assert seen_a and seen_b, "sessions are balanced over both servers"
    by_kind: dict[str, list[Any]] = {}
    for t in read_trajectories(run_dir):
        intent = next(m["content"] for m in t.messages if m["role"] == "user")
        by_kind.setdefault(kinds[intent], []).append(t)
    assert sum(map(len, by_kind.values())) == 10 and set(by_kind) == set(KINDS)
    ended = {kind: {t.termination.value for t in ts} for kind, ts in by_kind.items()}
    for kind in ("not_json", "unknown_tool", "wrong_types"):
        assert ended[kind] == {"too_many_errors"}, kind
    errors = {k: {c["error"] for t in by_kind[k] for c in t.tool_calls} for k in by_kind}
    assert errors["not_json"] == {"invalid_json"}
    assert errors["unknown_tool"] == {"unknown_tool"}
    # retail's tools take arguments as τ-bench's do, unvalidated: the wrong type is not found
    assert errors["wrong_types"] in ({"invalid_arguments"}, {"tool_error"})
    assert ended["http_500"] == {"model_error"}
    assert all("500" in (t.error or "") for t in by_kind["http_500"])
    assert ended["hang"] <= {"timeout", "model_error"}
    assert ended["good"] == {"user_stop"}
    assert main(["filter", "--run-dir", str(run_dir)]) == 0
    verdicts = [json.loads(line) for line in (run_dir / "filter" / "verdicts.jsonl").open()]
    assert not any(v["accepted"] for v in verdicts)
    endless = {t.key for t in by_kind["endless"]}
    for v in verdicts:
        if (v["task_id"], v["trial"]) in endless:
            assert v["stage"] == "validity" and "repeats itself" in v["reason"]


def test_a_pydantic_ai_model_string_plays_the_agent(tmp_path: Path) -> None:
    """`--agent-model` takes any pydantic-ai model string ("test" is pydantic-ai's own
    TestModel, which calls every tool once and then answers); a bad one is a clear error."""
    args = ["simulate", "--no-generated", "--vertical", "retail", "--tasks", "retail/dev/1"]
    args += ["--trials", "1"]
    assert main([*args, "--agent-model", "test", "--run-dir", str(tmp_path)]) == 0
    (trajectory,) = read_trajectories(tmp_path)
    assert trajectory.agent_model == "test:test"
    assert {c["name"] for c in trajectory.tool_calls} >= {
        "get_order_details",
        "cancel_pending_order",
    }
    bad = [*args, "--agent-model", "nosuchprovider:model", "--run-dir", str(tmp_path / "bad")]
    assert main(bad) == 2
