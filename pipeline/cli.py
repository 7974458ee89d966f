"""The `pipeline` command.

Stages land issue by issue; `pipeline` lists them with their state and runs those that exist.
Today that is the runtime itself: offline policies over the built-in example domain, streamed
to a resumable run directory.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import orjson
from pydantic import BaseModel
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from agentscaler.domains.build import build_domains
from agentscaler.domains.compile import compile_domain
from agentscaler.domains.spec import DomainSpec
from agentscaler.pipeline.files import write_atomic, write_jsonl
from agentscaler.pipeline.graph import Domains, GraphConfig, detect_domains
from agentscaler.pipeline.ingest import IngestConfig, ToolSpec, ingest
from agentscaler.pipeline.ingest.stage import DEFAULT_EXCLUDE
from agentscaler.pipeline.tasks import TaskConfig, domain_tasks
from agentscaler.runtime import (
    Environment,
    ErrorInjection,
    Event,
    RunSummary,
    Scheduler,
    SchedulerConfig,
    SessionFailed,
    SessionFinished,
    Task,
    UserError,
    gold_agent,
    scripted_user,
    with_gold_hash,
)
from agentscaler.runtime.example import bookstore, bookstore_tasks

STAGES: list[tuple[str, str, bool]] = [
    ("ingest", "normalize real tool specs into a ToolSpec corpus (`pipeline ingest`)", True),
    ("graph", "tool graph + community detection -> domains (`pipeline graph`)", True),
    (
        "domains",
        "DomainSpec -> SQLModel tables + read/write tools, checked (`pipeline domains`)",
        True,
    ),
    ("tasks", "grounded tasks with gold calls and gold hashes (`pipeline tasks`)", True),
    ("simulate", "user <-> agent sessions -> trajectories (example domain)", True),
    ("filter", "validity -> state alignment -> exact match", False),
    ("export", "SFT dataset for TRL-style trainers", False),
    ("train", "two-stage FSDP fine-tuning", False),
]


async def simulate_example(
    run_dir: Path, trials: int, concurrency: int, console: Console
) -> RunSummary:
    """Run the example domain's tasks with offline policies; resumes an earlier run in run_dir."""
    env = await Environment.build(bookstore())
    tasks = []
    for task in bookstore_tasks():
        replay = await env.replay((c.name, c.arguments) for c in task.gold_calls)
        tasks.append(with_gold_hash(task, replay.final_hash))
    config = SchedulerConfig(trials=trials, concurrency=concurrency)
    agent = gold_agent(ErrorInjection(bad_argument=0.1, extra_read=0.1, wrong_write=0.05))
    async with Scheduler(
        env, agent=agent, user=scripted_user(), run_dir=run_dir, config=config
    ) as scheduler:
        done = sum((t.id, i) in scheduler.sink.done for t in tasks for i in range(trials))
        with Progress(console=console, transient=True) as progress:
            bar = progress.add_task("simulate", total=len(tasks) * trials, completed=done)

            def advance(event: Event) -> None:
                if isinstance(event, SessionFinished | SessionFailed):
                    progress.advance(bar)

            scheduler.events.subscribe(advance)
            return await scheduler.run(tasks)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="every stage that exists (the default)")
    ingest_cmd = sub.add_parser(
        "ingest", help="normalize a tool-spec corpus into a ToolSpec corpus"
    )
    for p in (parser, run):
        p.add_argument("--run-dir", type=Path, default=Path("runs/default"))
        p.add_argument("--trials", type=int, default=4)
        p.add_argument("--concurrency", type=int, default=64)
    ingest_cmd.add_argument("--corpus", type=Path, required=True, help="root folder of the specs")
    ingest_cmd.add_argument("--run-dir", type=Path, default=Path("runs/default"))
    ingest_cmd.add_argument(
        "--exclude-tag",
        action="append",
        help="leave out sources with this tag (repeatable); default: " + ", ".join(DEFAULT_EXCLUDE),
    )
    ingest_cmd.add_argument(
        "--include-eval",
        action="store_true",
        help="exclude nothing, evaluation benchmarks included",
    )
    graph_cmd = sub.add_parser("graph", help="tool graph + community detection -> domains")
    graph_cmd.add_argument("--run-dir", type=Path, default=Path("runs/default"))
    for field, info in GraphConfig.model_fields.items():
        graph_cmd.add_argument(
            f"--{field.replace('_', '-')}", type=type(info.default), default=info.default
        )
    domains_cmd = sub.add_parser("domains", help="DomainSpecs from the graph, checked by execution")
    domains_cmd.add_argument("--run-dir", type=Path, default=Path("runs/default"))
    domains_cmd.add_argument("--seed", type=int, default=0)
    tasks_cmd = sub.add_parser("tasks", help="verifiable tasks by walks over each domain's tools")
    tasks_cmd.add_argument("--run-dir", type=Path, default=Path("runs/default"))
    for field, info in TaskConfig.model_fields.items():
        tasks_cmd.add_argument(
            f"--{field.replace('_', '-')}", type=type(info.default), default=info.default
        )
    args = parser.parse_args(argv)
    console = Console()
    if args.command == "tasks":
        return run_tasks(args, console)
    if args.command == "domains":
        return run_domains(args, console)
    if args.command == "ingest":
        return run_ingest(args, console)
    if args.command == "graph":
        return run_graph(args, console)
    return run_all(args, console)


M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")

_OUTPUTS = {  # what each stage leaves in the run directory, for the stages after it
    "ingest": lambda run_dir: run_dir / "corpus" / "tools.jsonl",
    "graph": lambda run_dir: run_dir / "graph" / "domains.json",
    "domains": lambda run_dir: run_dir / "domains" / "specs.jsonl",
}


def _missing(console: Console, run_dir: Path, *stages: str) -> bool:
    """Say which earlier stage to run when its output is not there yet."""
    for stage in stages:
        needed = _OUTPUTS[stage](run_dir)
        if not needed.exists():
            console.print(
                f"[red]error:[/] {needed} does not exist; run `pipeline {stage}` first",
                soft_wrap=True,
            )
            return True
    return False


def _load(run_dir: Path, stage: str, model: type[M]) -> list[M]:
    """The JSONL records an earlier stage wrote."""
    data = _OUTPUTS[stage](run_dir).read_bytes()
    return [model.model_validate_json(line) for line in data.splitlines()]


def _with_bar(
    console: Console, label: str, total: int, fn: Callable[..., Awaitable[R]], *args: Any
) -> R:
    """Run `fn(*args, advance)` on the event loop behind a rich progress bar."""
    with Progress(console=console, transient=True) as progress:
        bar = progress.add_task(label, total=total)
        return anyio.run(fn, *args, lambda: progress.advance(bar))


def run_graph(args: argparse.Namespace, console: Console) -> int:
    """`pipeline graph`: the corpus from `pipeline ingest` -> graph/domains.json."""
    if _missing(console, args.run_dir, "ingest"):
        return 2
    tools = _load(args.run_dir, "ingest", ToolSpec)
    config = GraphConfig(**{f: getattr(args, f) for f in GraphConfig.model_fields})
    domains = detect_domains(tools, config)
    out = args.run_dir / "graph"
    write_atomic(out / "domains.json", domains.model_dump_json(indent=1).encode())
    sizes = domains.sizes()
    console.print(
        f"graph: {domains.tools} tools, {domains.edges} edges, {len(sizes)} domains "
        f"(sizes {sizes[-1]}-{sizes[0]}, median {sizes[len(sizes) // 2]}) -> {out / 'domains.json'}",
        soft_wrap=True,
    )
    return 0


def run_tasks(args: argparse.Namespace, console: Console) -> int:
    """`pipeline tasks`: domains/specs.jsonl -> tasks/tasks.jsonl (gold calls, outputs, hash)."""
    if _missing(console, args.run_dir, "domains"):
        return 2
    specs = _load(args.run_dir, "domains", DomainSpec)
    config = TaskConfig(**{f: getattr(args, f) for f in TaskConfig.model_fields})

    async def generate(advance: Callable[[], None]) -> list[Task]:
        out: list[Task] = []
        for spec in specs:
            env = await Environment.build(compile_domain(spec))
            out += await domain_tasks(spec, env, config)
            advance()
        return out

    tasks = _with_bar(console, "tasks", len(specs), generate)
    write_jsonl(args.run_dir / "tasks" / "tasks.jsonl", tasks)
    writes = sum(1 for t in tasks if not t.gold_outputs)
    console.print(
        f"tasks: {len(tasks)} over {len(specs)} domains ({writes} change state, "
        f"{len(tasks) - writes} read-only with gold outputs) -> {args.run_dir / 'tasks' / 'tasks.jsonl'}",
        soft_wrap=True,
    )
    return 0


def run_domains(args: argparse.Namespace, console: Console) -> int:
    """`pipeline domains`: graph/domains.json -> domains/specs.jsonl + domains/check.json."""
    if _missing(console, args.run_dir, "ingest", "graph"):
        return 2
    tools = _load(args.run_dir, "ingest", ToolSpec)
    partition = Domains.model_validate_json(_OUTPUTS["graph"](args.run_dir).read_bytes()).domains
    report = _with_bar(
        console, "domains", len(partition), build_domains, partition, tools, args.seed
    )
    out = args.run_dir / "domains"
    write_jsonl(out / "specs.jsonl", report.specs)
    check = {"failures": report.failures, "dropped": report.dropped}
    write_atomic(
        out / "check.json", orjson.dumps(check, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    )
    kept = sum(len(s.tools) for s in report.specs)
    failed = sum(len(f) for f in report.failures.values())
    console.print(
        f"domains: {len(report.specs)} kept ({len(report.dropped)} dropped), {kept} tools pass the "
        f"execution check, {failed} failed -> {out / 'specs.jsonl'}",
        soft_wrap=True,
    )
    return 0


def run_ingest(args: argparse.Namespace, console: Console) -> int:
    """`pipeline ingest`: per-source counts, read / kept / merged / excluded / rejected."""
    exclude = () if args.include_eval else tuple(args.exclude_tag or DEFAULT_EXCLUDE)
    try:
        report = ingest(IngestConfig(corpus_root=args.corpus, exclude_tags=exclude))
    except UserError as exc:
        console.print(f"[red]error:[/] {exc}", soft_wrap=True)
        return 2
    report.write(args.run_dir / "corpus")
    table = Table(title=f"ingest {args.corpus} (excluding {', '.join(exclude) or 'nothing'})")
    for column in ("source", "files", "read", "kept", "merged", "excluded", "rejected by reason"):
        table.add_column(
            column, justify="left" if column in ("source", "rejected by reason") else "right"
        )
    for name, c in report.sources.items():
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(c.rejected.items())) or "-"
        table.add_row(
            name, str(c.files), str(c.read), str(c.kept), str(c.merged), str(c.excluded), reasons
        )
    console.print(table)
    console.print(
        f"{len(report.tools)} tools -> {args.run_dir / 'corpus' / 'tools.jsonl'}; "
        f"{len(report.rejections)} rejections (file, record, reason) -> rejections.jsonl",
        soft_wrap=True,
    )
    return 0


def run_all(args: argparse.Namespace, console: Console) -> int:
    table = Table(title="AgentScaler pipeline stages")
    table.add_column("stage")
    table.add_column("what it does")
    table.add_column("state")
    for name, what, ready in STAGES:
        table.add_row(name, what, "[green]ready[/]" if ready else "[dim]not built yet[/]")
    console.print(table)
    summary = anyio.run(
        simulate_example,
        args.run_dir,
        args.trials,
        args.concurrency,
        console,
        backend_options={"use_uvloop": sys.platform != "win32"},
    )
    console.print(
        f"simulate: {summary.written} trajectories written, {summary.skipped} already present, "
        f"{summary.failed} failed, in {summary.duration_s:.2f}s -> {args.run_dir}/trajectories/",
        soft_wrap=True,
    )
    console.print(f"terminations: {summary.by_termination}", soft_wrap=True)
    return 0 if summary.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
