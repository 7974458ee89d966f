"""The training stage of the `pipeline` command: the exported SFT files -> two-stage fine-tuning.

`pipeline train` takes the trainer's own flags (`python -m agentscaler.trainer --help`), reads
`RUN_DIR/sft/` and writes `RUN_DIR/train/`; the ranks run under torchrun, started here. `pipeline
run` ends with a short offline training of both stages.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from agentscaler.trainer.config import TrainConfig, add_flags, train_config


def train_args(parser: argparse.ArgumentParser) -> None:
    """The trainer's flags (data and output come from --run-dir), and the process count."""
    add_flags(parser, skip=("data", "out"))
    parser.add_argument(
        "--nproc-per-node",
        type=int,
        default=None,
        help="ranks on this machine (default: its GPUs, or 1 on CPU)",
    )


def config_for(run_dir: Path, **values: Any) -> TrainConfig:
    return train_config({**values, "data": run_dir / "sft", "out": run_dir / "train"})


def train(config: TrainConfig, nproc_per_node: int | None) -> None:
    from agentscaler.trainer.launch import launch  # imports torch: only when training

    launch(config, nproc_per_node=nproc_per_node)


def stage_table(config: TrainConfig) -> Table:
    """Per stage: steps, first and last loss, tokens/s, and where the model went."""
    table = Table(title=f"train -> {config.out}")
    for column in ("stage", "steps", "loss first -> last", "tokens/s", "model"):
        table.add_column(column, justify="right" if column in ("steps", "tokens/s") else "left")
    for stage in ("general", "vertical"):
        path = config.out / stage / "metrics.jsonl"
        if not path.exists():
            continue
        steps = [orjson.loads(line) for line in path.read_bytes().splitlines()]
        if not steps:
            continue
        rate = sum(s["tokens_per_s"] for s in steps) / len(steps)
        table.add_row(
            stage,
            str(steps[-1]["step"]),
            f"{steps[0]['loss']:.3f} -> {steps[-1]['loss']:.3f}",
            f"{rate:,.0f}",
            str(config.out / stage / "model"),
        )
    return table


def run_train(args: argparse.Namespace, console: Console) -> int:
    """`pipeline train`: both stages (or one) on this run's export."""
    given = {k: v for k, v in vars(args).items() if k in TrainConfig.model_fields}
    config = config_for(args.run_dir, **given)
    train(config, args.nproc_per_node)
    console.print(stage_table(config))
    return 0
