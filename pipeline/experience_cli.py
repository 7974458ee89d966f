"""The experience stages of the `pipeline` command: simulate, filter, export.

Each reads what the stage before it left in the run directory (see `pipeline.rundir`) and prints
what it did; `pipeline run` chains them after the build.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import anyio
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agentscaler.domains.vertical import TRAINING
from agentscaler.pipeline.export import ExportConfig, export_run
from agentscaler.pipeline.filter import FilterConfig, FilterReport, filter_run
from agentscaler.pipeline.rundir import DomainTools, read_domains
from agentscaler.pipeline.simulate import ModelConfig, Shard, SimulateConfig, simulate
from agentscaler.runtime import (
    Event,
    RetryPolicy,
    RunProgress,
    RunSummary,
    SessionFailed,
    SessionFinished,
    UserError,
)


def simulate_args(parser: argparse.ArgumentParser) -> None:
    default = SimulateConfig()
    parser.add_argument("--trials", type=int, default=default.trials, help="sessions per task")
    parser.add_argument("--concurrency", type=int, default=default.concurrency)
    parser.add_argument("--timeout-s", type=float, default=default.timeout_s, help="per session")
    parser.add_argument("--max-turns", type=int, default=default.max_turns)
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=default.retry.max_attempts,
        help="tries per model request on transient errors (backoff between them)",
    )
    parser.add_argument("--shard", default="0/1", help="I/N: this process's share of the tasks")
    parser.add_argument(
        "--tasks", default="*", help='only task ids matching this glob ("retail/*")'
    )
    parser.add_argument(
        "--vertical",
        action="append",
        choices=[*TRAINING, "none"],
        help=f"vertical domains to simulate (repeatable; default: {', '.join(TRAINING)})",
    )
    parser.add_argument(
        "--no-generated", action="store_true", help="leave out the build's general domains"
    )
    for side in ("agent", "user"):
        group = parser.add_argument_group(f"{side} model")
        group.add_argument(
            f"--{side}-model",
            default="offline",
            help='"offline" (built-in policy), a pydantic-ai model ("openai:gpt-4o"), '
            "or the name a --base-url server serves",
        )
        group.add_argument(
            f"--{side}-base-url",
            action="append",
            default=[],
            help="an OpenAI-compatible server (repeatable: sessions are balanced over them)",
        )
        group.add_argument(f"--{side}-api-key", default="unused")
        group.add_argument(f"--{side}-request-timeout-s", type=float, default=120.0)
        group.add_argument(
            f"--{side}-latency-s", type=float, default=0.0, help="offline: injected per call"
        )
    for name in ("bad_argument", "extra_read", "wrong_write"):
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=float,
            default=getattr(default, name),
            help="offline agent: rate of this deliberate mistake per gold call",
        )


def _side(args: argparse.Namespace, side: str) -> ModelConfig:
    return ModelConfig(
        model=getattr(args, f"{side}_model"),
        base_urls=tuple(getattr(args, f"{side}_base_url")),
        api_key=getattr(args, f"{side}_api_key"),
        timeout_s=getattr(args, f"{side}_request_timeout_s"),
        latency_s=getattr(args, f"{side}_latency_s"),
    )


def simulate_config(args: argparse.Namespace) -> SimulateConfig:
    vertical = args.vertical or list(TRAINING)
    try:
        return SimulateConfig(
            trials=args.trials,
            concurrency=args.concurrency,
            timeout_s=args.timeout_s,
            max_turns=args.max_turns,
            retry=RetryPolicy(max_attempts=args.max_attempts),
            shard=Shard.parse(args.shard),
            tasks=args.tasks,
            generated=not args.no_generated,
            vertical=tuple(v for v in vertical if v != "none"),
            agent=_side(args, "agent"),
            user=_side(args, "user"),
            bad_argument=args.bad_argument,
            extra_read=args.extra_read,
            wrong_write=args.wrong_write,
        )
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UserError(f"simulate: {where or 'config'}: {first['msg']}") from exc


def _progress_text(p: RunProgress) -> str:
    errors = sum(p.errors.values())
    return (
        f"running {p.running} · queued {p.queued} · failed {p.failed} · "
        f"{p.tool_calls_per_s:.0f} tool calls/s · model p50 {p.latency_ms['p50']:.0f} ms "
        f"p99 {p.latency_ms['p99']:.0f} ms · errors {errors}"
    )


def run_simulation(run_dir: Path, config: SimulateConfig, console: Console) -> RunSummary:
    """Simulate with a live progress bar; returns the run's summary."""
    columns = (
        TextColumn("simulate"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("", total=None)

        def start(total: int, done: int) -> None:
            progress.update(bar, total=total, completed=done)

        def on_event(event: Event) -> None:
            if isinstance(event, SessionFinished | SessionFailed):
                progress.advance(bar)
            elif isinstance(event, RunProgress):
                progress.update(bar, description=_progress_text(event))

        return anyio.run(
            lambda: simulate(run_dir, config, on_event=on_event, on_start=start),
            backend_options={"use_uvloop": sys.platform != "win32"},
        )


def print_simulation(summary: RunSummary, run_dir: Path, console: Console) -> None:
    rate = summary.written / summary.duration_s if summary.duration_s else 0.0
    console.print(
        f"simulate: {summary.written} trajectories written ({rate:.0f}/s), "
        f"{summary.skipped} already present, {summary.failed} failed, "
        f"in {summary.duration_s:.1f}s -> {run_dir / 'trajectories'}",
        soft_wrap=True,
    )
    console.print(f"terminations: {dict(sorted(summary.by_termination.items()))}", soft_wrap=True)


def run_simulate(args: argparse.Namespace, console: Console) -> int:
    """`pipeline simulate`: every task's trials through the scheduler; resumes."""
    summary = run_simulation(args.run_dir, simulate_config(args), console)
    print_simulation(summary, args.run_dir, console)
    return 0 if summary.failed == 0 else 1


def funnel_table(report: FilterReport, domains: Mapping[str, DomainTools]) -> Table:
    """In / out per stage, one row per domain group: vertical domains by name, the general
    domains summed (there are hundreds), and the total."""
    stages = list(next(iter(report.funnel.values()), {}))
    table = Table(title="filter funnel (trajectories in→out per stage)")
    table.add_column("domains")
    for stage in stages:
        table.add_column(stage, justify="right")
    table.add_column("accepted", justify="right")
    table.add_column("recovered", justify="right")
    groups: dict[str, list[str]] = {}
    for domain in report.funnel:
        group = domain if domains[domain].stage == "vertical" else "general"
        groups.setdefault(group, []).append(domain)
    groups["total"] = list(report.funnel)
    for group, members in groups.items():
        row = [f"{group} ({len(members)})" if group == "general" else group]
        for stage in stages:
            entered = sum(report.funnel[d][stage][0] for d in members)
            left = sum(report.funnel[d][stage][1] for d in members)
            row.append(f"{entered}→{left}")
        mine = [v for v in report.accepted if v.domain in set(members)]
        row += [str(len(mine)), str(sum(v.recovered for v in mine))]
        table.add_row(*row, end_section=group == "general")
    return table


def reason_kind(reason: str) -> str:
    """A rejection reason without its particulars (message index, names, call lists)."""
    general = re.sub(r"'[^']*'", "'…'", re.sub(r"^message \d+: ", "", reason))
    return general.split(":")[0]


def filter_config(args: argparse.Namespace) -> FilterConfig:
    stages = tuple(args.stage) if args.stage else FilterConfig().stages
    return FilterConfig(stages=stages, max_turns=args.max_turns)


def run_filter(args: argparse.Namespace, console: Console) -> int:
    """`pipeline filter`: the funnel over every shard's trajectories."""
    domains = read_domains(args.run_dir)
    report = filter_run(args.run_dir, filter_config(args), domains)
    console.print(funnel_table(report, domains))
    rejected: Counter[str] = Counter()
    for v in report.verdicts:
        if not v.accepted and v.reason is not None:
            rejected[f"{v.stage}: {reason_kind(v.reason)}"] += 1
    for reason, n in rejected.most_common(8):
        console.print(f"  rejected {n}: {reason}", soft_wrap=True)
    console.print(f"verdicts -> {args.run_dir / 'filter' / 'verdicts.jsonl'}", soft_wrap=True)
    return 0


def run_export(args: argparse.Namespace, console: Console) -> int:
    """`pipeline export`: accepted trajectories -> the SFT stage files."""
    config = ExportConfig(validation_share=args.validation_share, seed=args.split_seed)
    counts = export_run(args.run_dir, config)
    console.print(
        "export: "
        + ", ".join(f"{name} {n}" for name, n in counts.items())
        + f" rows -> {args.run_dir / 'sft'}",
        soft_wrap=True,
    )
    return 0
