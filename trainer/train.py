"""One training stage: FSDP2 over all ranks, AdamW with warmup and cosine decay, checkpoints.

The loop reads top to bottom: pack the stage's file, build and shard the model, resume if asked,
then one optimizer step per global batch, a metrics line per step, a checkpoint every N steps and
at the end, and the Hugging Face export.

Batches. The data order is the packed rows in a seeded permutation per epoch, epochs laid end to
end, so a row's place depends only on the seed: a run resumed at step k reads exactly the batches
the uninterrupted run would have. A step takes the next `world * grad_accum * batch_size` rows of
that order; micro-step m of rank r takes rows `(m * world + r) * batch_size` onwards, cut after
the last column that holds a sample in any of its rows.

Loss. The mean over the supervised tokens of the whole global batch (all ranks and micro-steps):
each micro-step backpropagates its sum of token losses divided by the global count of supervised
tokens, all-reduced before the first micro-step, so every token weighs the same whichever row or
rank it is in. A mean of per-micro-batch means would weigh a short turn's tokens more.

Determinism. On CPU every rank seeds the same, deterministic algorithms are on and gloo's
reductions are ordered, so a rerun, or a resume, gives the same losses bit for bit; resumed on
another number of ranks with the same global batch, the same up to the order of float sums.
"""

from __future__ import annotations

import math
import os
import random
import resource
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import structlog
import torch
import torch.distributed as dist
import torch.nn.functional as F
from pydantic import BaseModel
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.tensor import DTensor
from transformers import PreTrainedModel, PreTrainedTokenizerBase, get_cosine_schedule_with_warmup

from agentscaler.pipeline.files import write_atomic
from agentscaler.runtime import UserError

from .checkpoint import (
    TrainerState,
    export_pretrained,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from .config import TrainConfig
from .data import (
    IGNORE_INDEX,
    DataConfig,
    PackedBatch,
    PackedRow,
    block_causal_mask,
    collate,
    load_samples,
    pack,
)
from .model import build_model, parallelize

log = structlog.get_logger(__name__)


class Stage(BaseModel):
    """What differs between the two stages."""

    name: Literal["general", "vertical"]
    data: Path  # a train.jsonl
    run_dir: Path
    init: str  # the model it starts from: the base, or the previous stage's export
    lr: float
    max_length: int
    steps: int | None


class StepMetrics(BaseModel):
    """One line of a stage's metrics.jsonl."""

    step: int
    epoch: float  # passes over the stage's rows so far
    loss: float  # mean over the global batch's supervised tokens
    lr: float  # the rate this step used
    grad_norm: float  # before clipping
    tokens: int  # real (not padding) tokens in the global batch
    tokens_per_s: float
    memory_mib: float  # rank 0: peak RSS on CPU, peak allocated on GPU


@dataclass(frozen=True, slots=True)
class World:
    rank: int
    size: int
    device: torch.device
    mesh: DeviceMesh

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


@contextmanager
def distributed() -> Iterator[World]:
    """The process group torchrun describes in the environment: NCCL on GPUs, gloo on CPU."""
    if "RANK" not in os.environ:
        raise UserError("run under torchrun (or agentscaler.trainer.launch): RANK is not set")
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", init_method="env://", device_id=device)
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo", init_method="env://")
    try:
        mesh = init_device_mesh(device.type, (dist.get_world_size(),))
        yield World(dist.get_rank(), dist.get_world_size(), device, mesh)
    finally:
        dist.destroy_process_group()


class DataOrder:
    """Row indices in a seeded permutation per epoch, epochs end to end: position p is row
    `permutation(seed, p // n)[p % n]`, the same on every rank and in every resumed run."""

    def __init__(self, rows: int, seed: int) -> None:
        self.rows = rows
        self.seed = seed
        self._epochs: dict[int, list[int]] = {}

    def take(self, start: int, count: int) -> list[int]:
        return [
            self._permutation(p // self.rows)[p % self.rows] for p in range(start, start + count)
        ]

    def _permutation(self, epoch: int) -> list[int]:
        if epoch not in self._epochs:  # str seeds hash with sha512: stable across Python versions
            self._epochs[epoch] = random.Random(f"{self.seed}/{epoch}").sample(
                range(self.rows), self.rows
            )
        return self._epochs[epoch]


def train_stage(
    config: TrainConfig, stage: Stage, tokenizer: PreTrainedTokenizerBase, world: World
) -> Path:
    """Train a stage to its last step and export it to `run_dir/model`; with `config.resume`,
    start from its last checkpoint. Collective: every rank calls it."""
    rows = _packed_rows(stage, tokenizer, config, world)
    lengths = [row.length for row in rows]
    per_step = world.size * config.grad_accum * config.batch_size
    steps = stage.steps or math.ceil(config.epochs * len(rows) / per_step)
    torch.manual_seed(config.seed)  # the offline model's init, the same on every rank
    torch.use_deterministic_algorithms(not world.cuda)
    model = parallelize(
        build_model(
            stage.init,
            tokenizer,
            max_length=max(config.max_length, config.stage2_max_length or 0),
        ),
        world.mesh,
        bf16=world.cuda,
        activation_checkpointing=config.activation_checkpointing,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=stage.lr, weight_decay=config.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, round(config.warmup * steps), steps)
    state = TrainerState(step=0, position=0, scheduler=scheduler.state_dict())
    if config.resume and (last := latest_checkpoint(stage.run_dir)):
        state = load_checkpoint(last, model, optimizer)
        scheduler.load_state_dict(state.scheduler)
        log.info("resumed", stage=stage.name, checkpoint=str(last), step=state.step)
    metrics = MetricsLog(stage.run_dir / "metrics.jsonl", state.step, write=world.rank == 0)
    order = DataOrder(len(rows), config.seed)
    log.info("stage_started", stage=stage.name, init=stage.init, rows=len(rows), steps=steps)
    model.train()
    for step in range(state.step + 1, steps + 1):
        started = time.perf_counter()
        mine = _micro_batches(order.take(state.position, per_step), world, config.batch_size)
        lr = scheduler.get_last_lr()[0]
        loss, grad_norm, tokens = _optimizer_step(
            model,
            optimizer,
            [_trimmed([rows[i] for i in micro], max(lengths[i] for i in micro)) for micro in mine],
            sum(lengths[i] for micro in mine for i in micro),
            world,
            config.max_grad_norm,
        )
        scheduler.step()
        state = TrainerState(
            step=step, position=state.position + per_step, scheduler=scheduler.state_dict()
        )
        metrics.write(
            StepMetrics(
                step=step,
                epoch=state.position / len(rows),
                loss=loss,
                lr=lr,
                grad_norm=grad_norm,
                tokens=tokens,
                tokens_per_s=tokens / (time.perf_counter() - started),
                memory_mib=_peak_memory_mib(world),
            ),
            stage.name,
        )
        if step == steps or (config.checkpoint_every and step % config.checkpoint_every == 0):
            save_checkpoint(stage.run_dir, model, optimizer, state, keep=config.keep_checkpoints)
    export = stage.run_dir / "model"
    export_pretrained(model, tokenizer, export)
    log.info("stage_exported", stage=stage.name, path=str(export))
    return export


def _packed_rows(
    stage: Stage, tokenizer: PreTrainedTokenizerBase, config: TrainConfig, world: World
) -> list[PackedRow]:
    """Every rank reads the whole file (the order needs all rows); rank 0 reports on it."""
    samples, report = load_samples(
        [stage.data],
        tokenizer,
        DataConfig(
            max_length=stage.max_length,
            split_turns=config.split_turns,
            max_rows=config.max_rows,
        ),
    )
    if world.rank == 0:
        write_atomic(stage.run_dir / "data_report.json", report.model_dump_json(indent=2).encode())
    if not samples:
        raise UserError(f"{stage.data}: no row gives a training sample (see data_report.json)")
    pad = tokenizer.pad_token_id
    return pack(samples, stage.max_length, pad_id=pad if pad is not None else 0)


def _trimmed(rows: Sequence[PackedRow], width: int) -> PackedBatch:
    """The rows as a batch without the columns that are padding in every row: they follow all
    of the batch's samples, so no token attends to them and none has a label. Dropping them
    changes no result and saves the compute of the room packing could not fill."""
    batch = collate(rows)
    return PackedBatch(
        batch.input_ids[:, :width], batch.labels[:, :width], batch.position_ids[:, :width]
    )


def _micro_batches(picked: list[int], world: World, batch_size: int) -> list[list[int]]:
    """This rank's share of a step's rows: micro-step m takes `(m * world + rank) * batch_size`."""
    chunks = [picked[k : k + batch_size] for k in range(0, len(picked), batch_size)]
    return chunks[world.rank :: world.size]


class MetricsLog:
    """Rank 0's metrics.jsonl, one line per step, appended as each step ends."""

    def __init__(self, path: Path, resumed_at: int, *, write: bool) -> None:
        """Drops lines past the checkpoint a run resumes from: those steps run again and must
        not be logged twice."""
        self.path = path if write else None
        if self.path is None:
            return
        kept = []
        if resumed_at and path.exists():
            lines = path.read_text().splitlines()
            kept = [ln for ln in lines if StepMetrics.model_validate_json(ln).step <= resumed_at]
        write_atomic(path, "".join(line + "\n" for line in kept).encode())

    def write(self, line: StepMetrics, stage: str) -> None:
        if self.path is None:
            return
        with self.path.open("a") as file:
            file.write(line.model_dump_json() + "\n")
        log.info("step", stage=stage, **line.model_dump())


def _optimizer_step(
    model: PreTrainedModel,
    optimizer: torch.optim.Optimizer,
    batches: Sequence[PackedBatch],
    tokens: int,
    world: World,
    max_grad_norm: float,
) -> tuple[float, float, int]:
    """Forward and backward over this rank's micro-batches, then one update; returns the global
    batch's loss, the gradient norm before clipping and the global count of real tokens."""
    counts = torch.tensor(
        [sum(int((b.labels[:, 1:] != IGNORE_INDEX).sum()) for b in batches), tokens],
        dtype=torch.float64,
        device=world.device,
    )
    dist.all_reduce(counts)
    supervised = counts[0]
    loss_sum = torch.zeros((), dtype=torch.float64, device=world.device)
    mask_dtype = torch.bfloat16 if world.cuda else torch.float32
    for batch in batches:
        positions = batch.position_ids.to(world.device)
        logits = model(
            input_ids=batch.input_ids.to(world.device),
            position_ids=positions,
            attention_mask=block_causal_mask(positions, mask_dtype),  # built where it is used
            use_cache=False,
        ).logits
        labels = batch.labels[:, 1:].to(world.device)
        supervised_at = labels != IGNORE_INDEX  # upcast only these logits: vocab-wide rows
        token_losses = F.cross_entropy(
            logits[:, :-1][supervised_at].float(), labels[supervised_at], reduction="sum"
        )
        # FSDP averages gradients over ranks; times the world size they are the gradient of
        # (sum of every rank's token losses) / (global supervised tokens).
        torch.autograd.backward(token_losses * world.size / supervised)
        loss_sum += token_losses.detach()
    dist.all_reduce(loss_sum)
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm or math.inf)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if isinstance(norm, DTensor):
        norm = norm.full_tensor()
    return float(loss_sum / supervised), float(norm), int(counts[1])


def _peak_memory_mib(world: World) -> float:
    if world.cuda:
        return torch.cuda.max_memory_allocated(world.device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
