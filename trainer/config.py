"""What a training run is asked to do: `TrainConfig`, and its command-line flags.

Kept apart from the trainer (no torch here), so that `pipeline` offers the same flags as
`python -m agentscaler.trainer` without importing torch on every start.
"""

from __future__ import annotations

import argparse
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Union, cast, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentscaler.runtime import UserError

OFFLINE = "offline"


class TrainConfig(BaseModel):
    """A training run, both stages: built once from the command line (or `launch`), passed down.
    Each field is a flag of `python -m agentscaler.trainer`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(
        default=OFFLINE,
        description="base model: a Hugging Face hub name, a local path, or 'offline' (a small "
        "Qwen3 trained from scratch with a tokenizer learned from the data)",
    )
    data: Path = Field(description="the export's root: general/train.jsonl, vertical/train.jsonl")
    out: Path = Field(description="the run directory; each stage writes its own subdirectory")
    stages: Literal["both", "general", "vertical"] = Field(
        default="both", description="general, then vertical from its export; or one of them"
    )
    lr: float | None = Field(
        default=None,
        gt=0,
        description="stage 1's peak learning rate; default 1e-3 offline, 1e-5 pretrained",
    )
    steps: int | None = Field(default=None, gt=0, description="stage 1's steps; default: epochs")
    epochs: float = Field(default=1.0, gt=0, description="passes over a stage's rows, if no steps")
    stage2_lr: float | None = Field(default=None, gt=0, description="default: stage 1's lr")
    stage2_steps: int | None = Field(default=None, gt=0, description="default: epochs")
    batch_size: int = Field(default=1, gt=0, description="packed rows per micro-batch per rank")
    grad_accum: int = Field(default=1, gt=0, description="micro-batches per optimizer step")
    max_length: int = Field(default=4096, gt=0, description="tokens per packed row")
    stage2_max_length: int | None = Field(
        default=None, gt=0, description="stage 2's, when its rows are longer (default: the same)"
    )
    warmup: float = Field(default=0.03, ge=0, lt=1, description="share of a stage's steps")
    weight_decay: float = Field(default=0.0, ge=0)
    max_grad_norm: float = Field(default=1.0, ge=0, description="0: no clipping")
    checkpoint_every: int = Field(default=500, ge=0, description="steps; 0: at the end only")
    keep_checkpoints: int = Field(default=2, ge=0, description="newest kept; 0: all")
    resume: bool = Field(default=False, description="continue from each stage's last checkpoint")
    seed: int = 0
    activation_checkpointing: bool = False
    split_turns: bool = Field(default=False, description="one sample per assistant turn")
    max_rows: int | None = Field(
        default=None, gt=0, description="train on an even spread of at most N rows per stage"
    )

    @property
    def peak_lr(self) -> float:
        return self.lr or (1e-3 if self.model == OFFLINE else 1e-5)


def add_flags(parser: argparse.ArgumentParser, skip: Sequence[str] = ()) -> None:
    """One flag per `TrainConfig` field (but `skip`); an unset flag is absent from the parsed
    namespace (add them to a parser made with `argument_default=argparse.SUPPRESS`)."""
    for name, field in TrainConfig.model_fields.items():
        if name in skip:
            continue
        kind = field.annotation
        if get_origin(kind) in (Union, types.UnionType):  # `X | None`: the flag takes an X
            kind = next(a for a in get_args(kind) if a is not type(None))
        flag = f"--{name.replace('_', '-')}"
        text = field.description or ""
        if field.is_required():
            text += " (required unless in --config)"
        elif field.default not in (None, False):
            text += f" (default {field.default})"
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=text)
        elif get_origin(kind) is Literal:
            parser.add_argument(flag, choices=get_args(kind), help=text)
        else:
            parse = cast(Callable[[str], Any], kind)  # int, float, str or Path
            parser.add_argument(flag, type=parse, metavar=name.upper(), help=text)


def train_config(values: dict[str, Any]) -> TrainConfig:
    """The config from flag values; a bad one names its flag."""
    try:
        return TrainConfig.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise UserError(f"--{field.replace('_', '-')}: {first['msg']}") from None
