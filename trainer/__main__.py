"""`torchrun [...] -m agentscaler.trainer --data DIR --out DIR [flags]`: one rank of a training run.

The flags are `TrainConfig`'s fields (`--grad-accum 4`, `--resume/--no-resume`), generated from the
model so that the two never drift. `--config FILE` reads a JSON `TrainConfig` first (that is how
`launch` passes its config); flags given as well override it. A bad value stops every rank with
one line naming the field; rank 0 logs, the other ranks only log errors.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import structlog
from transformers.utils import logging as hf_logging

from agentscaler.runtime import UserError

from .config import TrainConfig, add_flags, train_config
from .stages import run


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agentscaler.trainer",
        description="Two-stage supervised fine-tuning on `pipeline export` data (run it under "
        "torchrun, or call agentscaler.trainer.launch).",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--config", type=Path, help="a JSON TrainConfig; flags override it")
    add_flags(parser)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> TrainConfig:
    given: dict[str, Any] = vars(parser().parse_args(argv))
    config_file: Path | None = given.pop("config", None)
    values = orjson.loads(config_file.read_bytes()) if config_file else {}
    return train_config({**values, **given})


def main(argv: Sequence[str] | None = None) -> int:
    rank = int(os.environ.get("RANK", "0"))
    level = logging.INFO if rank == 0 else logging.ERROR  # every rank reads the same data
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))
    # Hugging Face draws a bar per shard written or loaded, on every rank.
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        run(parse_args(argv))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
