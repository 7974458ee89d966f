"""Trainer throughput benchmark (not a test): our FSDP trainer vs TRL's SFTTrainer, then GPU MFU.

(a) CPU, both trainers on the same data, model, sequence length, batch size and schedule: real
    (not padding) tokens per second of optimizer steps, and the ratio ours / TRL (target >= 1.0),
    with both loss curves printed (they should agree within noise: the two draw batches in
    different orders). The data are real sessions of the example domain through
    `pipeline.export`; the model the offline Qwen3 shape, initialized once and saved, so both
    start from the same weights; the tokenizer learned from the rows. Both pack samples into
    rows of `--max-length` tokens (TRL: `packing=True`, best-fit decreasing, padding-free) and
    supervise only the agent's tokens (TRL: `assistant_only_loss=True` through the template's
    `{% generation %}` markers); both compute in fp32 without activation checkpointing (TRL's
    defaults, bf16 autocast and gradient checkpointing, are turned off to match). Ours runs as
    one rank under torchrun (`launch`), GPUs hidden.
(b) With a GPU (torch.cuda.is_available()): ours alone on a ~0.5B-parameter Qwen3-shaped model,
    random init, bf16 compute, all local GPUs: tokens/s and MFU = 6 * params * tokens/s /
    (GPUs * peak FLOP/s), peak 989e12 (H100/H200 bf16 dense) unless `--peak-flops` says otherwise.

Tokens/s leaves out each run's first step (allocator and thread-pool warm-up) and the time
outside steps (start-up, data preparation, checkpoints, export) for both trainers alike. The two
trainers run in alternation for `--rounds` rounds and each keeps its best round: on a shared
machine a busy spell slows whichever trainer it falls on.

Usage: uv run python bench/trainer_throughput.py [--steps 12] [--rounds 2] [--max-length 1536] [--batch-size 2]
The machine is noisy (2 cores): compare the ratio, not the absolute figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import datasets
import torch
from transformers import (
    AutoModelForCausalLM,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    PrinterCallback,
    Qwen3Config,
    Qwen3ForCausalLM,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)
from transformers.utils import logging as hf_logging
from trl import SFTConfig, SFTTrainer

from agentscaler.pipeline.export import ExportConfig, export_sft
from agentscaler.runtime import Environment, ErrorInjection, GoldAgent, ScriptedUser, Session
from agentscaler.runtime.example import bookstore, bookstore_tasks
from agentscaler.trainer.chat_templates import CHATML_TOOLS
from agentscaler.trainer.config import TrainConfig
from agentscaler.trainer.data import (
    Conversation,
    DataConfig,
    load_samples,
    read_conversations,
    train_tokenizer,
)
from agentscaler.trainer.launch import launch
from agentscaler.trainer.model import offline_config

# TRL's rows keep `tools` and call arguments as JSON strings, as exported: Arrow would merge the
# differing dicts (tool schemas, arguments) into one struct and fill the missing keys with nulls,
# which would render. TRL parses a `tools` string itself; for arguments, this template writes the
# string as it is, which, dumped with tojson's separators, is the text CHATML_TOOLS renders.
TRL_TEMPLATE = CHATML_TOOLS.replace(
    "{{- call.function.arguments | tojson }}",
    "{{- call.function.arguments if call.function.arguments is string"
    " else call.function.arguments | tojson }}",
)


@dataclass
class Curve:
    """Per-step loss, real tokens and seconds of one trainer's run."""

    losses: list[float]
    tokens: list[int]
    seconds: list[float]

    @property
    def tokens_per_s(self) -> float:
        return sum(self.tokens[1:]) / sum(self.seconds[1:])

    def rate(self, step: int) -> float:
        return self.tokens[step] / self.seconds[step]


async def _sessions(out: Path, trials: int) -> Path:
    env = await Environment.build(bookstore())
    kinds = {name: t.kind for name, t in env.tools.items()}
    runs = []
    for task in bookstore_tasks():
        for trial in range(trials):
            injection = ErrorInjection(bad_argument=0.3, extra_read=0.3)
            agent = GoldAgent(task, kinds, injection, seed=str(trial))
            runs.append(await Session(task, env, agent, ScriptedUser(task), trial=trial).run())
    tools = {env.name: [t.openai_schema() for t in env.tools.values()]}
    export_sft(runs, tools, lambda domain: "general", out, ExportConfig(validation_share=0))
    return out / "general" / "train.jsonl"


def dataset(out: Path, trials: int) -> Path:
    """Real sessions of the example domain, exported as `pipeline export` writes them."""
    return anyio.run(_sessions, out, trials)


def save_base(
    path: Path, tokenizer: PreTrainedTokenizerBase, config: Qwen3Config, seed: int
) -> int:
    """A randomly initialized model saved with its tokenizer: both trainers start from it.
    Returns its parameter count."""
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return sum(p.numel() for p in model.parameters())


def run_ours(config: TrainConfig, nproc: int, gpu: bool) -> Curve:
    log = config.out / "train.log"
    launch(
        config, nproc_per_node=nproc, env={} if gpu else {"CUDA_VISIBLE_DEVICES": ""}, output=log
    )
    lines = [json.loads(line) for line in (config.out / "general" / "metrics.jsonl").open()]
    return Curve(
        losses=[m["loss"] for m in lines],
        tokens=[m["tokens"] for m in lines],
        seconds=[m["tokens"] / m["tokens_per_s"] for m in lines],
    )


class _StepClock(TrainerCallback):
    """Seconds and input tokens of each optimizer step, as our trainer measures them."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.tokens: list[int] = []
        self._started = 0.0
        self._seen = 0

    def on_step_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        self._started = time.perf_counter()

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        self.seconds.append(time.perf_counter() - self._started)
        self.tokens.append(state.num_input_tokens_seen - self._seen)
        self._seen = state.num_input_tokens_seen


def trl_rows(path: Path) -> datasets.Dataset:
    """The exported rows as TRL reads them, arguments re-dumped with tojson's separators."""
    rows = []
    for line in path.open():
        row = json.loads(line)
        for message in row["messages"]:
            for call in message.get("tool_calls") or []:
                arguments = json.loads(call["function"]["arguments"])
                call["function"]["arguments"] = json.dumps(arguments, ensure_ascii=False)
        rows.append({"messages": row["messages"], "tools": row["tools"]})
    return datasets.Dataset.from_list(rows)


def run_trl(base: Path, rows: datasets.Dataset, args: argparse.Namespace, out: Path) -> Curve:
    trl_tokenizer = PreTrainedTokenizerFast.from_pretrained(base)
    trl_tokenizer.chat_template = TRL_TEMPLATE
    config = SFTConfig(
        output_dir=str(out),
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr,
        lr_scheduler_type="cosine",
        warmup_steps=round(args.warmup * args.steps),
        weight_decay=0.0,
        max_grad_norm=1.0,
        optim="adamw_torch",
        bf16=False,  # TRL's default: bf16 autocast, even on CPU; ours computes in fp32 there
        gradient_checkpointing=False,  # TRL's default is on; ours is off unless asked
        assistant_only_loss=True,
        packing=True,
        packing_strategy="bfd",
        max_length=args.max_length,
        include_num_input_tokens_seen="non_padding",
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        seed=args.seed,
        disable_tqdm=True,
    )
    clock = _StepClock()
    model = AutoModelForCausalLM.from_pretrained(base, attn_implementation="sdpa")
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=rows,
        processing_class=trl_tokenizer,
        callbacks=[clock],
    )
    trainer.remove_callback(PrinterCallback)  # a dict per step; the table below has them
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return Curve(losses=losses, tokens=clock.tokens, seconds=clock.seconds)


def cpu_comparison(
    args: argparse.Namespace, work: Path, data: Path, tokenizer: PreTrainedTokenizerFast
) -> None:
    conversations = [c for c in read_conversations(data) if isinstance(c, Conversation)]
    base = work / "base"
    params = save_base(base, tokenizer, offline_config(tokenizer, args.max_length), args.seed)
    _, report = load_samples([data], tokenizer, DataConfig(max_length=args.max_length))
    rows = trl_rows(data)
    same = _same_renderings(conversations, rows, tokenizer)
    print(
        f"data: {report.rows_read} rows, {report.samples} samples, {report.tokens} tokens "
        f"({report.supervised_tokens} supervised), rendered identically for TRL: "
        f"{same}/{len(rows)} rows; model: {params / 1e6:.2f}M params, vocab {len(tokenizer)}; "
        f"max_length {args.max_length}, batch {args.batch_size} rows, {args.steps} steps, "
        f"lr {args.lr}, {torch.get_num_threads()} threads"
    )
    rounds = []
    for round_ in range(1, args.rounds + 1):  # alternated, so that a noisy spell hits both
        config = TrainConfig(
            model=str(base),
            data=work / "sft",
            out=work / f"ours{round_}",
            stages="general",
            lr=args.lr,
            steps=args.steps,
            batch_size=args.batch_size,
            max_length=args.max_length,
            warmup=args.warmup,
            checkpoint_every=0,
            seed=args.seed,
        )
        ours = run_ours(config, nproc=1, gpu=False)
        trl = run_trl(base, rows, args, work / f"trl{round_}")
        print(
            f"round {round_}: tokens/s (steps 2-{args.steps}) ours {ours.tokens_per_s:.0f}, "
            f"TRL {trl.tokens_per_s:.0f}"
        )
        rounds.append((ours, trl))
    ours, trl = rounds[0]  # both trainers are seeded: every round has the same losses
    print(
        f"\n{'step':>4} {'ours loss':>10} {'TRL loss':>10}   {'ours tok/s':>10} {'TRL tok/s':>10}"
    )
    for k, (mine, theirs) in enumerate(zip(ours.losses, trl.losses, strict=True)):
        print(
            f"{k + 1:>4} {mine:>10.4f} {theirs:>10.4f}   {ours.rate(k):>10.0f} {trl.rate(k):>10.0f}"
        )
    half = len(ours.losses) // 2
    print(
        f"\nmean loss over the last {len(ours.losses) - half} steps: "
        f"ours {statistics.mean(ours.losses[half:]):.4f}, TRL {statistics.mean(trl.losses[half:]):.4f}"
    )
    best_ours = max(o.tokens_per_s for o, _ in rounds)
    best_trl = max(t.tokens_per_s for _, t in rounds)
    print(
        f"tokens/s, best of {args.rounds} rounds: ours {best_ours:.0f}, TRL {best_trl:.0f}, "
        f"ratio ours/TRL {best_ours / best_trl:.2f} (target >= 1.0)"
    )


def _same_renderings(
    conversations: list[Conversation], rows: datasets.Dataset, tokenizer: PreTrainedTokenizerBase
) -> int:
    """Rows whose text is the same through our path and TRL's: both trainers read the same."""
    ours = [
        tokenizer.apply_chat_template(c.template_messages(), tools=c.tools, tokenize=False)
        for c in conversations
    ]
    theirs = [
        tokenizer.apply_chat_template(
            row["messages"],
            tools=json.loads(row["tools"]),
            tokenize=False,
            chat_template=TRL_TEMPLATE,
        )
        for row in rows
    ]
    return sum(a == b for a, b in zip(ours, theirs, strict=True))


def gpu_mfu(args: argparse.Namespace, work: Path, tokenizer: PreTrainedTokenizerFast) -> None:
    shape = Qwen3Config(  # Qwen3-0.6B's layer shape, 24 layers: ~0.53B parameters
        vocab_size=151_936,
        hidden_size=1024,
        intermediate_size=3072,
        num_hidden_layers=24,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
        max_position_embeddings=args.gpu_max_length,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    params = save_base(work / "base-gpu", tokenizer, shape, args.seed)
    gpus = torch.cuda.device_count()
    ours = run_ours(
        TrainConfig(
            model=str(work / "base-gpu"),
            data=work / "sft",
            out=work / "ours-gpu",
            stages="general",
            lr=args.lr,
            steps=args.gpu_steps,
            batch_size=args.gpu_batch_size,
            max_length=args.gpu_max_length,
            warmup=args.warmup,
            checkpoint_every=0,
            activation_checkpointing=args.gpu_activation_checkpointing,
            seed=args.seed,
        ),
        nproc=gpus,
        gpu=True,
    )
    mfu = 6 * params * ours.tokens_per_s / (gpus * args.peak_flops)
    print(
        f"\nGPU: {torch.cuda.get_device_name()} x {gpus}, {params / 1e9:.3f}B params, bf16, "
        f"max_length {args.gpu_max_length}, batch {args.gpu_batch_size} rows per GPU, "
        f"{args.gpu_steps} steps: {ours.tokens_per_s:.0f} tokens/s, "
        f"MFU {mfu:.1%} of {args.peak_flops:.3g} FLOP/s per GPU; "
        f"losses {[round(x, 3) for x in ours.losses]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2, help="alternated runs of each trainer")
    parser.add_argument("--max-length", type=int, default=1536)
    parser.add_argument("--batch-size", type=int, default=2, help="packed rows per step")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=float, default=0.1, help="share of the steps")
    parser.add_argument("--trials", type=int, default=3, help="sessions per example task")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gpu-steps", type=int, default=20)
    parser.add_argument("--gpu-max-length", type=int, default=4096)
    parser.add_argument("--gpu-batch-size", type=int, default=4)
    parser.add_argument("--gpu-activation-checkpointing", action="store_true")
    parser.add_argument("--peak-flops", type=float, default=989e12, help="per GPU, bf16 dense")
    args = parser.parse_args()
    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = dataset(work / "sft", args.trials)
        tokenizer = train_tokenizer(
            c for c in read_conversations(data) if isinstance(c, Conversation)
        )
        cpu_comparison(args, work, data, tokenizer)
        if torch.cuda.is_available():
            gpu_mfu(args, work, tokenizer)


if __name__ == "__main__":
    main()
