"""Start a training run: torchrun (`torch.distributed.run`) as a child process, one rank per GPU.

The config travels as `out/train_config.json`, which also records what the run was asked to do;
the ranks read it with `--config`. One node rendezvous on a free local port (`--standalone`);
several nodes call `launch` on each node with the same `rdzv_endpoint` (a host:port of one of
them), which is what `torchrun --nnodes N --rdzv-backend c10d` does by hand. The ranks print to
this process's stdout and stderr, or to `output` when given (the run's log file).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path

import torch

from agentscaler.pipeline.files import write_atomic
from agentscaler.runtime import AgentScalerError, UserError

from .config import TrainConfig

CONFIG_FILE = "train_config.json"


class TrainingFailed(AgentScalerError):
    """A rank exited with an error; the ranks' output says which and why."""


def launch(
    config: TrainConfig,
    *,
    nproc_per_node: int | None = None,
    nnodes: int = 1,
    rdzv_endpoint: str | None = None,
    rdzv_id: str = "agentscaler",
    env: Mapping[str, str] | None = None,
    output: Path | None = None,
) -> None:
    """Run `config` under torchrun and wait; `nproc_per_node` defaults to the GPU count, or 1
    on CPU; `env` is added to this process's environment for the ranks. Raises TrainingFailed
    if any rank fails."""
    if nnodes > 1 and not rdzv_endpoint:
        raise UserError("launching on several nodes needs rdzv_endpoint (host:port of one node)")
    nproc = nproc_per_node or torch.cuda.device_count() or 1
    config_file = config.out / CONFIG_FILE
    write_atomic(config_file, config.model_dump_json(indent=2).encode())
    if rdzv_endpoint:
        rendezvous = ["--nnodes", str(nnodes), "--rdzv-backend", "c10d"]
        rendezvous += ["--rdzv-endpoint", rdzv_endpoint, "--rdzv-id", rdzv_id]
    else:
        rendezvous = ["--standalone"]
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc)),
        *rendezvous,
        *("-m", "agentscaler.trainer", "--config", str(config_file)),
    ]
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("ab") if output else nullcontext() as log:
        code = subprocess.run(
            command,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT if log else None,
            check=False,
        ).returncode
    if code:
        where = f"; see {output}" if output else ""
        raise TrainingFailed(f"training exited with code {code}{where}: {' '.join(command)}")
