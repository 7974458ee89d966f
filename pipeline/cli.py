"""The `pipeline` command.

`pipeline` (or `pipeline run`) chains build -> simulate -> filter -> export on the bundled corpus
of real tool specs and the vertical domains, with offline policies, into a resumable run
directory; each stage also runs alone (`pipeline build --corpus DIR`, `pipeline simulate`, ...).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, get_args

import anyio
import orjson
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from agentscaler.domains.spec import DomainSpec
from agentscaler.domains.vertical import REPLAYERS
from agentscaler.pipeline.build import DomainBuild, build_domains
from agentscaler.pipeline.experience_cli import (
    filter_config,
    funnel_table,
    print_simulation,
    run_export,
    run_filter,
    run_simulate,
    run_simulation,
    simulate_args,
    simulate_config,
)
from agentscaler.pipeline.export import ExportConfig, export_run
from agentscaler.pipeline.files import write_atomic, write_jsonl
from agentscaler.pipeline.filter import STAGES as FILTER_STAGES
from agentscaler.pipeline.filter import FilterConfig, filter_run
from agentscaler.pipeline.graph import TFIDF, Domains, GraphConfig, detect_domains, preload_tfidf
from agentscaler.pipeline.ingest import IngestConfig, IngestReport, ToolSpec, ingest
from agentscaler.pipeline.ingest.stage import DEFAULT_EXCLUDE
from agentscaler.pipeline.llm import LLMConfig
from agentscaler.pipeline.parallel import default_workers
from agentscaler.pipeline.rundir import read_domains
from agentscaler.pipeline.summary import BuildSummary
from agentscaler.pipeline.tasks import TaskConfig, generate_tasks
from agentscaler.pipeline.train_cli import config_for, run_train, stage_table, train, train_args
from agentscaler.runtime import (
    UserError,
)

BUNDLED_CORPUS = Path(__file__).parent / "corpus"  # see corpus/ATTRIBUTION.md


def _model_args(
    parser: argparse.ArgumentParser, model: type[BaseModel], skip: Sequence[str] = ()
) -> None:
    """One `--flag` per field of a config model, defaulting to the model's default."""
    for field, info in model.model_fields.items():
        if field not in skip:
            # `float | None` reads as a float; its None default stays None
            kinds = [k for k in get_args(info.annotation) if k is not type(None)]
            parser.add_argument(
                f"--{field.replace('_', '-')}",
                type=kinds[0] if kinds else type(info.default),
                default=info.default,
                help=info.description,
            )


def _config(model: type[M], args: argparse.Namespace, **fixed: Any) -> M:
    """The config from the command line; a bad value names its flag."""
    try:
        return model(**{f: fixed.get(f, getattr(args, f, None)) for f in model.model_fields})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        flag = (
            "--" + "-".join(str(p).replace("_", "-") for p in first["loc"]) if first["loc"] else ""
        )
        raise UserError(f"{flag or model.__name__}: {first['msg']}") from exc


def _ingest_args(parser: argparse.ArgumentParser, corpus: Path | None = None) -> None:
    parser.add_argument(
        "--corpus",
        type=Path,
        default=corpus,
        required=corpus is None,
        help="root folder of the specs" + (" (default: the bundled selection)" if corpus else ""),
    )
    parser.add_argument(
        "--exclude-tag",
        action="append",
        help="leave out sources with this tag (repeatable); default: " + ", ".join(DEFAULT_EXCLUDE),
    )
    parser.add_argument(
        "--include-eval",
        action="store_true",
        help="exclude nothing, evaluation benchmarks included",
    )


def _workers_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers", type=int, default=default_workers(), help="processes (default: the cores)"
    )


def _build_args(parser: argparse.ArgumentParser, corpus: Path | None = None) -> None:
    _ingest_args(parser, corpus)
    _model_args(parser, GraphConfig, skip=("seed",))
    _model_args(parser, TaskConfig, skip=("seed",))
    parser.add_argument("--seed", type=int, default=0, help="seeds communities, domains and tasks")
    _workers_arg(parser)
    llm = parser.add_argument_group("optional model passes (off by default)")
    llm.add_argument("--llm", help='pydantic-ai model ("openai:gpt-4o-mini") or served model name')
    llm.add_argument("--llm-base-url", help="an OpenAI-compatible server (vLLM, SGLang, Ollama)")
    llm.add_argument("--llm-api-key", default="unused")
    llm.add_argument("--llm-edges", action="store_true", help="confirm or drop dependency edges")
    llm.add_argument("--llm-intents", action="store_true", help="rewrite template intents")


def _filter_args(parser: argparse.ArgumentParser, max_turns: bool) -> None:
    parser.add_argument(
        "--stage", action="append", choices=FILTER_STAGES, help="stages to apply (default: all)"
    )
    if max_turns:
        parser.add_argument("--max-turns", type=int, default=FilterConfig().max_turns)


def _export_args(parser: argparse.ArgumentParser) -> None:
    default = ExportConfig()
    parser.add_argument("--validation-share", type=float, default=default.validation_share)
    parser.add_argument("--split-seed", default=default.seed, help="seeds the split by task")


def _run_train_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training (a short offline run; `pipeline train` for more)")
    group.add_argument("--train-steps", type=int, default=20, help="stage 1 steps")
    group.add_argument("--train-stage2-steps", type=int, default=4, help="stage 2 steps")
    group.add_argument("--train-rows", type=int, default=300, help="rows per stage (a spread)")
    group.add_argument("--train-max-length", type=int, default=2048, help="stage 1 row tokens")
    group.add_argument(
        "--train-stage2-max-length",
        type=int,
        default=8192,
        help="stage 2 row tokens (τ²-bench telecom's policy and tools alone take ~7,500)",
    )
    group.add_argument("--no-train", action="store_true", help="stop after the export")
    group.add_argument("--nproc-per-node", type=int, default=None, help="training ranks")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="build -> simulate -> filter -> export (the default)")
    for p in (parser, run):
        _build_args(p, BUNDLED_CORPUS)
        simulate_args(p)
        _filter_args(p, max_turns=False)  # the sessions' --max-turns
        _export_args(p)
        _run_train_args(p)
    build = sub.add_parser("build", help="ingest -> graph -> domains -> tasks, with a summary")
    _build_args(build)
    ingest_cmd = sub.add_parser(
        "ingest", help="normalize a tool-spec corpus into a ToolSpec corpus"
    )
    _ingest_args(ingest_cmd)
    _workers_arg(ingest_cmd)
    graph_cmd = sub.add_parser("graph", help="tool graph + community detection -> domains")
    _model_args(graph_cmd, GraphConfig)
    domains_cmd = sub.add_parser("domains", help="DomainSpecs from the graph, checked by execution")
    domains_cmd.add_argument("--seed", type=int, default=0)
    _workers_arg(domains_cmd)
    tasks_cmd = sub.add_parser("tasks", help="verifiable tasks by walks over each domain's tools")
    _model_args(tasks_cmd, TaskConfig)
    _workers_arg(tasks_cmd)
    simulate_cmd = sub.add_parser(
        "simulate", help="every task's trials as user <-> agent sessions -> trajectories"
    )
    simulate_args(simulate_cmd)
    filter_cmd = sub.add_parser("filter", help="the funnel: validity -> state -> exact match")
    _filter_args(filter_cmd, max_turns=True)
    export_cmd = sub.add_parser("export", help="accepted trajectories -> SFT stage files")
    _export_args(export_cmd)
    train_cmd = sub.add_parser(
        "train",
        help="two-stage fine-tuning on the export (FSDP under torchrun)",
        argument_default=argparse.SUPPRESS,
    )
    train_args(train_cmd)
    replay_cmd = sub.add_parser(
        "replay", help="replay a benchmark task file's gold actions on a vertical domain"
    )
    replay_cmd.add_argument("--domain", choices=sorted(REPLAYERS), required=True)
    replay_cmd.add_argument(
        "--tasks", type=Path, required=True, help="τ-bench task JSONL, or τ²-bench tasks (telecom)"
    )
    replay_cmd.add_argument("--out", type=Path, required=True, help="one JSON line per task")
    replay_cmd.add_argument("--split", help="recorded in each line (default: from the file name)")
    for p in (
        parser,
        run,
        build,
        ingest_cmd,
        graph_cmd,
        domains_cmd,
        tasks_cmd,
        simulate_cmd,
        filter_cmd,
        export_cmd,
        train_cmd,
    ):
        p.add_argument("--run-dir", type=Path, default=Path("runs/default"))
    args = parser.parse_args(argv)
    console = Console()
    commands = {
        "build": run_build,
        "ingest": run_ingest,
        "graph": run_graph,
        "domains": run_domains,
        "tasks": run_tasks,
        "simulate": run_simulate,
        "filter": run_filter,
        "export": run_export,
        "train": run_train,
        "replay": run_replay,
    }
    try:
        return commands.get(args.command, run_all)(args, console)
    except UserError as exc:
        console.print(f"[red]error:[/] {exc}", soft_wrap=True)
        return 2


M = TypeVar("M", bound=BaseModel)

_OUTPUTS = {  # what each stage leaves in the run directory, for the stages after it
    "ingest": lambda run_dir: run_dir / "corpus" / "tools.jsonl",
    "graph": lambda run_dir: run_dir / "graph" / "domains.json",
    "domains": lambda run_dir: run_dir / "domains" / "specs.jsonl",
    "tasks": lambda run_dir: run_dir / "tasks" / "tasks.jsonl",
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


@contextmanager
def _bar(console: Console, label: str, total: int | None) -> Iterator[Callable[[], None]]:
    """A rich progress bar; yields the function that advances it by one.

    It redraws on each advance rather than from a refresh thread: a process with one thread
    can fork its workers (see `pipeline.parallel`)."""
    with Progress(console=console, transient=True, auto_refresh=False) as progress:
        bar = progress.add_task(label, total=total)

        def advance() -> None:
            progress.advance(bar)
            progress.refresh()

        yield advance


def _ingest(
    args: argparse.Namespace, meanwhile: Callable[[], object] | None = None
) -> tuple[IngestReport, tuple[str, ...]]:
    exclude = () if args.include_eval else tuple(args.exclude_tag or DEFAULT_EXCLUDE)
    config = IngestConfig(corpus_root=args.corpus, exclude_tags=exclude)
    report = ingest(config, args.workers, meanwhile)
    report.write(args.run_dir / "corpus")
    return report, exclude


def _graph(tools: Sequence[ToolSpec], config: GraphConfig, run_dir: Path) -> Domains:
    domains = detect_domains(tools, config)
    write_atomic(_OUTPUTS["graph"](run_dir), domains.model_dump_json(indent=1).encode())
    return domains


def _write_domains(builds: Sequence[DomainBuild], run_dir: Path) -> None:
    """specs.jsonl (kept domains) and check.json (failing tools and dropped domains, why)."""
    write_jsonl(_OUTPUTS["domains"](run_dir), [b.spec for b in builds if b.spec is not None])
    check = {
        "failures": {b.name: b.failures for b in builds if b.failures},
        "dropped": {b.name: b.reason for b in builds if b.spec is None},
        "llm_failures": {b.name: b.llm.failures for b in builds if b.llm and b.llm.failures},
    }
    write_atomic(
        run_dir / "domains" / "check.json",
        orjson.dumps(
            check, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=BaseModel.model_dump
        ),
    )


def run_build(args: argparse.Namespace, console: Console) -> int:
    """`pipeline build`: every construction stage in one go, then the summary table."""
    graph_config, task_config = _config(GraphConfig, args), _config(TaskConfig, args)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    # scikit-learn's import (TF-IDF edges, and the text similarity that places small
    # communities whatever the embedding) runs while ingest's workers read
    report, exclude = _ingest(args, preload_tfidf)
    timings["ingest"] = time.perf_counter() - start
    graph = _graph(report.tools, graph_config, args.run_dir)
    timings["graph"] = time.perf_counter() - start - timings["ingest"]
    llm = None
    if args.llm_edges or args.llm_intents:
        if not args.llm:
            raise UserError("--llm-edges and --llm-intents need a model: --llm MODEL")
        if args.llm_api_key != "unused" and not args.llm_base_url:
            raise UserError(
                "--llm-api-key applies to --llm-base-url servers; a provider's key comes from "
                "its environment variable (OPENAI_API_KEY, ...)"
            )
        llm = LLMConfig(
            model=args.llm,
            base_url=args.llm_base_url,
            api_key=args.llm_api_key,
            edges=args.llm_edges,
            intents=args.llm_intents,
        )
    with _bar(console, "domains + tasks", len(graph.domains)) as advance:
        builds = build_domains(
            graph.domains,
            report.tools,
            seed=args.seed,
            tasks=task_config,
            llm=llm,
            workers=args.workers,
            on_domain=advance,
        )
    _write_domains(builds, args.run_dir)
    tasks = [t for b in builds for t in b.tasks]
    write_jsonl(_OUTPUTS["tasks"](args.run_dir), tasks)
    timings["domains + tasks"] = time.perf_counter() - start - sum(timings.values())
    summary = BuildSummary.of(report, graph, builds)
    write_atomic(args.run_dir / "summary.json", summary.model_dump_json(indent=1).encode())
    console.print(
        summary.table(f"build {args.corpus} (excluding {', '.join(exclude) or 'nothing'})")
    )
    console.print(
        "seconds: "
        + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
        + f"; outputs in {args.run_dir}",
        soft_wrap=True,
    )
    return 0


def run_replay(args: argparse.Namespace, console: Console) -> int:
    """`pipeline replay`: each task's gold actions on a fresh database, as the benchmark's own
    replay records (τ-bench: observations, initial and final data hash, db_changed; τ²-bench
    telecom: both databases, every observation, the env assertions)."""
    if not args.tasks.is_file():
        raise UserError(f"{args.tasks} is not a file")
    split = args.split or next(
        (s for s in ("train", "dev", "test") if s in args.tasks.stem), args.tasks.stem
    )
    with _bar(console, "replay", None) as advance:
        lines = anyio.run(REPLAYERS[args.domain], args.tasks, split, advance)
    write_atomic(args.out, b"".join(orjson.dumps(line) + b"\n" for line in lines))
    console.print(f"replay: {len(lines)} tasks of {args.domain} -> {args.out}", soft_wrap=True)
    return 0


def run_graph(args: argparse.Namespace, console: Console) -> int:
    """`pipeline graph`: the corpus from `pipeline ingest` -> graph/domains.json."""
    if _missing(console, args.run_dir, "ingest"):
        return 2
    domains = _graph(
        _load(args.run_dir, "ingest", ToolSpec), _config(GraphConfig, args), args.run_dir
    )
    sizes = domains.sizes()
    console.print(
        f"graph: {domains.tools} tools, {domains.edges} edges, {len(sizes)} domains "
        f"(sizes {sizes[-1]}-{sizes[0]}, median {sizes[len(sizes) // 2]}) -> "
        f"{_OUTPUTS['graph'](args.run_dir)}",
        soft_wrap=True,
    )
    return 0


def run_tasks(args: argparse.Namespace, console: Console) -> int:
    """`pipeline tasks`: domains/specs.jsonl -> tasks/tasks.jsonl (gold calls, outputs, hash)."""
    if _missing(console, args.run_dir, "domains"):
        return 2
    specs = _load(args.run_dir, "domains", DomainSpec)
    with _bar(console, "tasks", len(specs)) as advance:
        tasks = generate_tasks(
            specs, _config(TaskConfig, args), workers=args.workers, on_domain=advance
        )
    write_jsonl(_OUTPUTS["tasks"](args.run_dir), tasks)
    writes = sum(1 for t in tasks if not t.gold_outputs)
    console.print(
        f"tasks: {len(tasks)} over {len(specs)} domains ({writes} change state, "
        f"{len(tasks) - writes} read-only with gold outputs) -> {_OUTPUTS['tasks'](args.run_dir)}",
        soft_wrap=True,
    )
    return 0


def run_domains(args: argparse.Namespace, console: Console) -> int:
    """`pipeline domains`: graph/domains.json -> domains/specs.jsonl + domains/check.json."""
    if _missing(console, args.run_dir, "ingest", "graph"):
        return 2
    tools = _load(args.run_dir, "ingest", ToolSpec)
    partition = Domains.model_validate_json(_OUTPUTS["graph"](args.run_dir).read_bytes()).domains
    with _bar(console, "domains", len(partition)) as advance:
        builds = build_domains(
            partition, tools, seed=args.seed, workers=args.workers, on_domain=advance
        )
    _write_domains(builds, args.run_dir)
    kept = [b.spec for b in builds if b.spec is not None]
    console.print(
        f"domains: {len(kept)} kept ({len(builds) - len(kept)} dropped), "
        f"{sum(len(s.tools) for s in kept)} tools pass the execution check, "
        f"{sum(len(b.failures) for b in builds)} failed -> {_OUTPUTS['domains'](args.run_dir)}",
        soft_wrap=True,
    )
    return 0


def run_ingest(args: argparse.Namespace, console: Console) -> int:
    """`pipeline ingest`: per-source counts, read / kept / merged / excluded / rejected."""
    report, exclude = _ingest(args)
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
        f"{len(report.tools)} tools -> {_OUTPUTS['ingest'](args.run_dir)}; "
        f"{len(report.rejections)} rejections (file, record, reason) -> rejections.jsonl",
        soft_wrap=True,
    )
    return 0


def _build_once(args: argparse.Namespace, console: Console) -> str:
    """Build unless this run directory holds a build of the same inputs; a different one is an
    error (its trajectories would be judged against other tasks)."""
    graph = _config(GraphConfig, args, seed=args.seed)
    inputs = {
        "corpus": str(args.corpus.resolve()),
        "seed": args.seed,
        "exclude": sorted(args.exclude_tag or ()) if not args.include_eval else "nothing",
        # the threshold in effect, so an unset one equals its explicit default
        "graph": {**graph.model_dump(), "threshold": graph.edge_threshold},
        "tasks": _config(TaskConfig, args, seed=args.seed).model_dump(),
    }
    record = args.run_dir / "build.json"
    if record.exists() and _OUTPUTS["tasks"](args.run_dir).exists():
        earlier = orjson.loads(record.read_bytes())
        earlier["graph"].setdefault("embedding", TFIDF)  # recorded before embeddings existed
        if earlier != inputs:
            raise UserError(
                f"{args.run_dir} holds a build of other inputs (see {record}); "
                "use a new --run-dir, or the same corpus and settings to resume"
            )
        return "done earlier, kept"
    run_build(args, console)
    write_atomic(record, orjson.dumps(inputs, option=orjson.OPT_INDENT_2))
    summary = BuildSummary.model_validate_json((args.run_dir / "summary.json").read_bytes())
    return f"{summary.domains_kept} domains, {summary.tasks} tasks"


def run_all(args: argparse.Namespace, console: Console) -> int:
    """`pipeline` / `pipeline run`: build -> simulate -> filter -> export, each resumable."""
    built = _build_once(args, console) if not args.no_generated else "skipped (--no-generated)"
    summary = run_simulation(args.run_dir, simulate_config(args), console)
    print_simulation(summary, args.run_dir, console)
    domains = read_domains(args.run_dir)
    report = filter_run(args.run_dir, filter_config(args), domains)
    console.print(funnel_table(report, domains))
    counts = export_run(
        args.run_dir,
        ExportConfig(validation_share=args.validation_share, seed=args.split_seed),
        domains,
    )
    table = Table(title=f"pipeline run -> {args.run_dir}")
    table.add_column("stage")
    table.add_column("result")
    table.add_row("build", built)
    table.add_row(
        "simulate",
        f"{summary.written} written, {summary.skipped} already present, {summary.failed} failed",
    )
    table.add_row("filter", f"{len(report.accepted)} of {len(report.verdicts)} accepted")
    table.add_row("export", ", ".join(f"{name} {n}" for name, n in counts.items()))
    table.add_row("train", _train_once(args, console))
    console.print(table)
    return 0 if summary.failed == 0 else 1


def _train_once(args: argparse.Namespace, console: Console) -> str:
    """Both stages, short, on the offline model; a finished training is kept (resume)."""
    if args.no_train:
        return "skipped (--no-train)"
    config = config_for(
        args.run_dir,
        steps=args.train_steps,
        stage2_steps=args.train_stage2_steps,
        max_rows=args.train_rows,
        max_length=args.train_max_length,
        stage2_max_length=args.train_stage2_max_length,
        checkpoint_every=0,
        resume=True,
    )
    final = config.out / "vertical" / "model"
    if final.exists():
        return f"done earlier, kept: {final}"
    train(config, args.nproc_per_node)
    console.print(stage_table(config))
    return f"general {args.train_steps} + vertical {args.train_stage2_steps} steps -> {final}"


if __name__ == "__main__":
    sys.exit(main())
