"""Sharded checkpoints for resume, and the final model in Hugging Face format.

A checkpoint is `checkpoints/step_00000042/`: the model and optimizer as torch.distributed.checkpoint
shards (each rank writes its own; loading reshards, so a run may resume on another world size),
`trainer_state.json` (step, data position, scheduler) and one `rng_<rank>.pt` per rank. Ranks
write into `step_….tmp/` and rank 0 renames it when all are done, so a directory without `.tmp`
is complete and a killed save leaves only a `.tmp` that the next save clears. The filesystem must
be shared by all nodes, as DCP requires.

The export gathers a full state dict on rank 0 (CPU-offloaded, so no device holds two copies) and
writes it with `save_pretrained`, next to the tokenizer and its chat template, so it loads with
`AutoModelForCausalLM` / `AutoTokenizer` and can start the next stage. Weights stay fp32, the
master copy: stage 2 starts from exactly what stage 1 ended with.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from pydantic import BaseModel
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)
from torch.distributed.checkpoint.state_dict_loader import load as dcp_load
from torch.distributed.checkpoint.state_dict_saver import save as dcp_save
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from agentscaler.pipeline.files import write_atomic

STATE_FILE = "trainer_state.json"


class TrainerState(BaseModel):
    """What a resumed run needs beyond the tensors."""

    step: int  # optimizer steps done
    position: int  # rows of the data order consumed: where the next batch starts
    scheduler: dict[str, Any]


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step_{step:08d}"


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The complete checkpoint with the highest step, if any."""
    done = sorted((run_dir / "checkpoints").glob("step_*[0-9]"))
    return done[-1] if done else None


def save_checkpoint(
    run_dir: Path,
    model: PreTrainedModel,
    optimizer: torch.optim.Optimizer,
    state: TrainerState,
    *,
    keep: int,
) -> Path:
    """Collective: every rank calls it. Keeps the `keep` newest checkpoints (0: all)."""
    rank = dist.get_rank()
    final = checkpoint_dir(run_dir, state.step)
    tmp = final.with_name(final.name + ".tmp")
    if rank == 0 and tmp.exists():
        shutil.rmtree(tmp)
    dist.barrier()
    model_state, optim_state = get_state_dict(model, optimizer)
    dcp_save({"model": model_state, "optim": optim_state}, checkpoint_id=tmp)
    torch.save(_rng_state(), tmp / f"rng_{rank}.pt")
    dist.barrier()
    if rank == 0:
        write_atomic(tmp / STATE_FILE, state.model_dump_json(indent=2).encode())
        tmp.rename(final)
        if keep:
            for old in sorted(final.parent.glob("step_*[0-9]"))[:-keep]:
                shutil.rmtree(old)
    dist.barrier()
    return final


def load_checkpoint(
    path: Path, model: PreTrainedModel, optimizer: torch.optim.Optimizer
) -> TrainerState:
    """Collective: restores model, optimizer and this rank's RNG; returns the rest."""
    model_state, optim_state = get_state_dict(model, optimizer)
    loaded: dict[str, Any] = {"model": model_state, "optim": optim_state}
    dcp_load(loaded, checkpoint_id=path)
    set_state_dict(
        model, optimizer, model_state_dict=loaded["model"], optim_state_dict=loaded["optim"]
    )
    rng = path / f"rng_{dist.get_rank()}.pt"
    if rng.exists():  # absent when resuming on more ranks than saved
        _set_rng_state(torch.load(rng))
    return TrainerState.model_validate_json((path / STATE_FILE).read_bytes())


def export_pretrained(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out: Path
) -> None:
    """Collective: the full model and its tokenizer under `out`, written by rank 0."""
    state = get_model_state_dict(
        model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
    )
    if dist.get_rank() == 0:
        tmp = out.with_name(out.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        config = copy.deepcopy(model.config)
        config.use_cache = True  # training turns the KV cache off; generation wants it
        with torch.device("meta"):  # no random init of weights about to be replaced
            plain: PreTrainedModel = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]
        plain.load_state_dict(state, assign=True)
        plain.tie_weights()  # assign=True loads tied weights as two tensors
        plain.generation_config = model.generation_config
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    dist.barrier()


def _rng_state() -> dict[str, torch.Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
