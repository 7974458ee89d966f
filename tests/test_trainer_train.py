"""Training end to end in real torchrun jobs: 2 gloo ranks on CPU, FSDP2, the offline model.

One tiny dataset in `pipeline export`'s layout (tools and call arguments as JSON strings) with two
bad rows in it; one two-stage run and one resumed run, shared by the tests below, which read their
metrics, reports, checkpoints and exports. Nothing is downloaded: the tokenizer is learned from
the rows, the model built from a config.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from agentscaler.trainer.__main__ import parse_args
from agentscaler.trainer.chat_templates import CHATML_TOOLS
from agentscaler.trainer.config import TrainConfig
from agentscaler.trainer.launch import launch

pytestmark = pytest.mark.slow


def _tool(name: str, description: str, **properties: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {key: {"type": kind} for key, kind in properties.items()},
                "required": list(properties),
            },
        },
    }


BOOKSTORE = [
    _tool("get_order", "Look up an order by its id.", order_id="integer"),
    _tool(
        "cancel_order", "Cancel an order that has not shipped.", order_id="integer", reason="string"
    ),
]
AIRLINE = [
    _tool("get_reservation", "Look up a reservation.", reservation_id="string"),
    _tool(
        "change_seat", "Move a passenger to a free seat.", reservation_id="string", seat="string"
    ),
]


def _call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": "", "tool_calls": [
        {"id": f"call_{name}", "type": "function",
         "function": {"name": name, "arguments": json.dumps(arguments)}}
    ]}  # fmt: skip


def _result(name: str, **content: Any) -> dict[str, Any]:
    return {"role": "tool", "content": json.dumps(content), "tool_call_id": f"call_{name}", "name": name}  # fmt: skip


def _row(tools: list[dict[str, Any]], *messages: dict[str, Any]) -> str:
    system = {"role": "system", "content": "You are the support agent. Use the tools."}
    return json.dumps({"messages": [system, *messages], "tools": json.dumps(tools)})


def _status(n: int) -> str:
    shipped = f"2024-05-{n % 28 + 1:02d}"
    return _row(
        BOOKSTORE,
        {"role": "user", "content": f"Where is my order {n}?"},
        _call("get_order", order_id=n),
        _result("get_order", order_id=n, status="shipped", shipped_on=shipped),
        {"role": "assistant", "content": f"Order {n} shipped on {shipped}."},
    )


def _cancel(n: int) -> str:
    return _row(
        BOOKSTORE,
        {"role": "user", "content": f"Please cancel order {n}, I ordered it twice."},
        _call("get_order", order_id=n),
        _result("get_order", order_id=n, status="pending"),
        _call("cancel_order", order_id=n, reason="ordered twice"),
        _result("cancel_order", order_id=n, status="cancelled"),
        {"role": "assistant", "content": f"Order {n} is cancelled."},
    )


def _seat(n: int) -> str:
    reservation, seat = f"R{100 + n}", f"{n % 30 + 1}{'ABCDEF'[n % 6]}"
    return _row(
        AIRLINE,
        {"role": "user", "content": f"Move me to seat {seat} on reservation {reservation}."},
        _call("get_reservation", reservation_id=reservation),
        _result("get_reservation", reservation_id=reservation, seat="12C"),
        _call("change_seat", reservation_id=reservation, seat=seat),
        _result("change_seat", reservation_id=reservation, seat=seat),
        {"role": "assistant", "content": f"Seat {seat} is yours on {reservation}."},
    )


NO_ASSISTANT_LINE, MALFORMED_CALL_LINE = 4, 9


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """general/train.jsonl: 16 good rows, one without an assistant turn, one whose call arguments
    are not JSON; vertical/train.jsonl: 8 rows of another domain."""
    root = tmp_path_factory.mktemp("sft")
    general = [f(n) for n in range(8) for f in (_status, _cancel)]
    unanswered = json.loads(_status(99))
    unanswered["messages"] = unanswered["messages"][:2]
    general.insert(NO_ASSISTANT_LINE - 1, json.dumps(unanswered))
    malformed = json.loads(_cancel(98))
    malformed["messages"][2]["tool_calls"][0]["function"]["arguments"] = '{"order_id": 98'
    general.insert(MALFORMED_CALL_LINE - 1, json.dumps(malformed))
    for stage, rows in (("general", general), ("vertical", [_seat(n) for n in range(8)])):
        (root / stage).mkdir()
        (root / stage / "train.jsonl").write_text("".join(row + "\n" for row in rows))
    return root


@pytest.fixture(scope="module")
def config(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainConfig:
    return TrainConfig(
        data=dataset,
        out=tmp_path_factory.mktemp("run"),
        lr=3e-3,
        steps=6,
        stage2_lr=1e-3,
        stage2_steps=2,
        batch_size=1,
        grad_accum=2,
        max_length=512,
        warmup=0.2,
        checkpoint_every=3,
        keep_checkpoints=0,
    )


@pytest.fixture(scope="module")
def two_stage(config: TrainConfig) -> Path:
    """The full two-stage run on 2 ranks, through `launch`, its output in `out/train.log`."""
    launch(config, nproc_per_node=2, output=config.out / "train.log")
    return config.out


@pytest.fixture(scope="module")
def resumed(two_stage: Path, config: TrainConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stage 1 again from its step-3 checkpoint, as if the run had been killed after saving it
    (the later checkpoint and the export removed, metrics.jsonl left with all six lines), on one
    rank with twice the accumulation: the same global batch of 4 rows, the shards resharded."""
    out = tmp_path_factory.mktemp("resumed")
    shutil.copytree(two_stage / "tokenizer", out / "tokenizer")
    shutil.copytree(
        two_stage / "general", out / "general", ignore=shutil.ignore_patterns("model", "step_*6")
    )
    update = {"out": out, "stages": "general", "resume": True, "grad_accum": 4}
    launch(config.model_copy(update=update), nproc_per_node=1, output=out / "train.log")
    return out


def _metrics(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_two_ranks_train_with_fsdp_and_the_loss_goes_down(two_stage: Path) -> None:
    """Stage 1 logs every step with its loss, throughput, lr, gradient norm, memory and epoch,
    and the loss of the last step is well below the first."""
    lines = _metrics(two_stage / "general")
    assert [m["step"] for m in lines] == [1, 2, 3, 4, 5, 6]
    assert all(m["tokens_per_s"] > 0 and m["grad_norm"] > 0 and m["memory_mib"] > 0 for m in lines)
    assert lines[0]["lr"] == 0 and lines[1]["lr"] == pytest.approx(3e-3)  # 1 warmup step
    assert lines[-1]["epoch"] > 1  # the data order wrapped into a second epoch
    assert lines[-1]["loss"] < lines[0]["loss"] - 1.0
    checkpoints = sorted(p.name for p in (two_stage / "general" / "checkpoints").iterdir())
    assert checkpoints == ["step_00000003", "step_00000006"]


def test_resuming_from_a_checkpoint_gives_the_uninterrupted_losses(
    two_stage: Path, resumed: Path
) -> None:
    """Steps 4-6 after a resume from step 3 read the same rows and reach the same losses and
    gradient norms as the uninterrupted run, on one rank as on two (the loss is the global
    batch's token mean, however it is split; only the order of float sums differs); each step
    is once in metrics.jsonl."""
    before, after = _metrics(two_stage / "general"), _metrics(resumed / "general")
    assert [m["step"] for m in after] == [1, 2, 3, 4, 5, 6]
    assert after[:3] == before[:3]  # the lines up to the checkpoint are kept as they were
    for old, new in zip(before[3:], after[3:], strict=True):
        assert new["loss"] == pytest.approx(old["loss"], abs=1e-6)
        assert new["grad_norm"] == pytest.approx(old["grad_norm"], abs=1e-5)
        assert (new["tokens"], new["lr"], new["epoch"]) == (old["tokens"], old["lr"], old["epoch"])
    assert (resumed / "general" / "model" / "config.json").exists()


def test_stage_two_starts_from_stage_one_and_logs_its_own_metrics(two_stage: Path) -> None:
    """The vertical stage has its own metrics, checkpoint and export; it starts from stage 1's
    export (its first loss far below a fresh model's, its weights two Adam steps away from
    stage 1's) with a fresh schedule at its own rate."""
    general, vertical = _metrics(two_stage / "general"), _metrics(two_stage / "vertical")
    assert [m["step"] for m in vertical] == [1, 2]
    assert vertical[0]["loss"] < general[0]["loss"] - 1.0
    assert vertical[0]["lr"] == pytest.approx(1e-3)  # no warmup step in 20% of 2 steps
    assert (two_stage / "vertical" / "checkpoints" / "step_00000002").is_dir()
    start = load_file(two_stage / "general" / "model" / "model.safetensors")
    end = load_file(two_stage / "vertical" / "model" / "model.safetensors")
    assert start.keys() == end.keys()
    for name, weight in start.items():  # Adam moves each weight by at most ~lr per step
        assert (end[name] - weight).abs().max() <= 2 * 1e-3 * 1.01, name


def test_the_export_loads_with_auto_classes_and_generates(two_stage: Path) -> None:
    """The final export is a Hugging Face model and tokenizer with the tool-aware chat template;
    it generates from a chat prompt."""
    path = two_stage / "vertical" / "model"
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert tokenizer.chat_template == CHATML_TOOLS
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Move me to seat 3C on reservation R105."}],
        tools=AIRLINE,
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > prompt["input_ids"].shape[1]


def test_bad_rows_are_reported_by_file_and_line_and_training_goes_on(
    two_stage: Path, dataset: Path
) -> None:
    """The row without an assistant turn and the one with unparsable call arguments are logged
    and in the stage's data report as `path:line`; the other 16 rows trained."""
    report = json.loads((two_stage / "general" / "data_report.json").read_text())
    path = dataset / "general" / "train.jsonl"
    where = [(p["line"], p["field"]) for p in report["problems"]]
    assert where == [
        (NO_ASSISTANT_LINE, "messages"),
        (MALFORMED_CALL_LINE, "messages.2.tool_calls.0.function.arguments"),
    ]
    assert all(p["path"] == str(path) for p in report["problems"])
    log = (two_stage / "train.log").read_text()
    assert (
        f"where={path}:{NO_ASSISTANT_LINE}" in log and f"where={path}:{MALFORMED_CALL_LINE}" in log
    )
    assert report["rows_read"] == 18 and report["samples"] == 16
    assert (two_stage / "general" / "model" / "config.json").exists()


def test_flags_override_the_config_file(tmp_path: Path) -> None:
    """`--config` reads a JSON TrainConfig (what `launch` passes); flags given as well win."""
    file = tmp_path / "train_config.json"
    file.write_text(TrainConfig(data=tmp_path, out=tmp_path / "out", steps=7).model_dump_json())
    config = parse_args(["--config", str(file), "--grad-accum", "4", "--activation-checkpointing"])
    assert (config.steps, config.grad_accum, config.activation_checkpointing) == (7, 4, True)
    assert parse_args(["--data", "d", "--out", "o"]).model == "offline"
