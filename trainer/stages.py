"""The two-stage run: general domains first, then the vertical ones starting from stage 1's export.

`out/general/` and `out/vertical/` each hold their metrics.jsonl, data_report.json, checkpoints/
and the exported model/; stage 2 loads `out/general/model` with a fresh optimizer, its own learning
rate and steps. The offline tokenizer is learned once, from every file the run trains on, and kept
in `out/tokenizer/`, so a resumed run and both stages read the same token ids.

With `resume`, a stage whose export exists is done and skipped, and an unfinished one continues
from its last checkpoint; without it, a run directory that already holds a stage is refused
rather than overwritten.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import structlog
import torch.distributed as dist
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from agentscaler.runtime import UserError

from .config import OFFLINE, TrainConfig
from .data import Conversation, read_conversations, train_tokenizer
from .model import load_tokenizer
from .train import Stage, World, distributed, train_stage

log = structlog.get_logger(__name__)


def plan(config: TrainConfig) -> list[Stage]:
    """The stages this run trains, in order; `init` is the base model until chained by `run`."""
    stages = [
        Stage(
            name="general",
            data=config.data / "general" / "train.jsonl",
            run_dir=config.out / "general",
            init=config.model,
            lr=config.peak_lr,
            max_length=config.max_length,
            steps=config.steps,
        ),
        Stage(
            name="vertical",
            data=config.data / "vertical" / "train.jsonl",
            run_dir=config.out / "vertical",
            init=config.model,
            lr=config.stage2_lr or config.peak_lr,
            max_length=config.stage2_max_length or config.max_length,
            steps=config.stage2_steps,
        ),
    ]
    return [s for s in stages if config.stages in ("both", s.name)]


def run(config: TrainConfig) -> Path:
    """Every planned stage, each from the previous one's export; returns the last export.
    Runs on every rank of the torchrun job."""
    stages = plan(config)
    for stage in stages:
        if not stage.data.is_file():
            raise UserError(f"{stage.data} does not exist; run `pipeline export` first")
    with distributed() as world:
        started = [
            p for p in [config.out / "tokenizer", *(s.run_dir for s in stages)] if p.exists()
        ]
        if started and not config.resume:
            raise UserError(f"{started[0]} exists; pass --resume to continue, or another --out")
        dist.barrier()  # every rank has looked before rank 0 writes
        tokenizer = _tokenizer(config, stages, world)
        init = config.model
        for stage in stages:
            export = stage.run_dir / "model"
            if export.exists():
                log.info("stage_done", stage=stage.name, path=str(export))
            else:
                train_stage(config, stage.model_copy(update={"init": init}), tokenizer, world)
            init = str(export)
    log.info("run_finished", model=init)
    return Path(init)


def _tokenizer(config: TrainConfig, stages: list[Stage], world: World) -> PreTrainedTokenizerBase:
    """The base model's tokenizer, or the offline one: learned by rank 0, read by every rank."""
    if config.model != OFFLINE:
        return load_tokenizer(config.model)
    path = config.out / "tokenizer"
    if world.rank == 0 and not path.exists():
        conversations = [
            item
            for stage in stages
            for item in read_conversations(stage.data, config.max_rows)
            if isinstance(item, Conversation)
        ]
        tmp = path.with_name("tokenizer.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        train_tokenizer(conversations).save_pretrained(tmp)
        tmp.rename(path)
        log.info("tokenizer_trained", path=str(path), conversations=len(conversations))
    dist.barrier()
    tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(path)
    return tokenizer
