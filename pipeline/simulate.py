"""The simulate stage: every task of a run, k trials each, through the runtime's scheduler.

Tasks come from the build (`tasks/tasks.jsonl`, over the compiled general domains) and from the
vertical domains' shipped training sets (gold hashes computed here, written to
`tasks/vertical-shard-I-of-N.jsonl` so the filter judges against the same gold). Trajectories stream to
`trajectories/shard-I-of-N.jsonl`: running again resumes the shard, and `--shard I/N` splits the
tasks over N processes or machines (a Slurm array, a Kubernetes indexed job) by a hash of the
task id, so every trial of a task lands in one shard and the filter merges the shards.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import orjson
from pydantic import BaseModel, Field, model_validator

from agentscaler.domains.compile import compile_domain
from agentscaler.domains.spec import DomainSpec
from agentscaler.domains.vertical import TRAINING
from agentscaler.pipeline.files import write_atomic
from agentscaler.pipeline.rundir import (
    SHARD_FILE,
    DomainTools,
    StageTag,
    merge_jsonl,
    shard_files,
    stable_hash,
)
from agentscaler.runtime import (
    Environment,
    ErrorInjection,
    Event,
    ModelFactory,
    RetryPolicy,
    RunSummary,
    Scheduler,
    SchedulerConfig,
    SessionLimits,
    Task,
    UserError,
    as_factory,
    gold_agent,
    load_balanced,
    load_tasks,
    openai_compatible,
    scripted_user,
    with_gold_state,
)


class ModelConfig(BaseModel):
    """Who plays one side. "offline" is the built-in policy (gold agent, scripted user); any
    other name is a pydantic-ai model string ("openai:gpt-4o") or, with `base_urls`, the model
    name served by those OpenAI-compatible servers (vLLM, SGLang), sessions balanced over them."""

    model: str = "offline"
    base_urls: tuple[str, ...] = ()
    api_key: str = "unused"
    timeout_s: float = Field(default=120.0, gt=0)  # one model request
    latency_s: float = Field(default=0.0, ge=0)  # offline only: injected per call (benchmarks)

    @model_validator(mode="after")
    def _coherent(self) -> ModelConfig:
        if self.model == "offline" and self.base_urls:
            raise ValueError("base URLs need the served model's name, not 'offline'")
        if self.model != "offline" and self.latency_s:
            raise ValueError("an injected latency applies to the offline policies only")
        return self


class Shard(BaseModel):
    index: int = Field(ge=0)
    count: int = Field(ge=1)

    @model_validator(mode="after")
    def _in_range(self) -> Shard:
        if self.index >= self.count:
            raise ValueError(f"shard {self.index} of {self.count}: the index counts from 0")
        return self

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`I/N` (as a Slurm array or a Kubernetes indexed job numbers its workers)."""
        index, sep, count = text.partition("/")
        if not sep or not index.isdigit() or not count.isdigit():
            raise UserError(f"--shard {text!r}: expected I/N, e.g. 0/4")
        return cls(index=int(index), count=int(count))

    @property
    def file(self) -> str:
        return f"shard-{self.index}-of-{self.count}.jsonl"

    def owns(self, task_id: str) -> bool:
        return stable_hash(task_id) % self.count == self.index


class SimulateConfig(BaseModel):
    trials: int = Field(default=2, ge=1)
    concurrency: int = Field(default=256, ge=1)
    timeout_s: float = Field(default=600.0, gt=0)  # one session
    max_turns: int = Field(default=20, ge=1)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)  # transient model errors
    shard: Shard = Field(default_factory=lambda: Shard(index=0, count=1))
    tasks: str = "*"  # a glob over task ids ("retail/dev/*"): simulate only those
    generated: bool = True  # the build's general domains, when the run directory has them
    vertical: tuple[str, ...] = tuple(TRAINING)
    agent: ModelConfig = Field(default_factory=ModelConfig)
    user: ModelConfig = Field(default_factory=ModelConfig)
    # The offline agent's deliberate mistakes, per gold call: recovered errors and failures
    # give the filter something to judge (rates as `ErrorInjection`'s fields).
    bad_argument: float = Field(default=0.1, ge=0, le=1)
    extra_read: float = Field(default=0.1, ge=0, le=1)
    wrong_write: float = Field(default=0.05, ge=0, le=1)

    @model_validator(mode="after")
    def _known_vertical(self) -> SimulateConfig:
        unknown = set(self.vertical) - set(TRAINING)
        if unknown:
            raise ValueError(f"no vertical domain {sorted(unknown)}; known: {sorted(TRAINING)}")
        return self


@dataclass
class Workload:
    """What this shard simulates: its tasks, and the environments of their domains."""

    environments: dict[str, Environment] = field(default_factory=dict)
    user_environments: dict[str, Environment] = field(default_factory=dict)
    stages: dict[str, StageTag] = field(default_factory=dict)
    tasks: list[Task] = field(default_factory=list)


def _selected(tasks: list[Task], config: SimulateConfig) -> list[Task]:
    return [t for t in tasks if config.shard.owns(t.id) and fnmatch.fnmatchcase(t.id, config.tasks)]


async def load_workload(run_dir: Path, config: SimulateConfig) -> Workload:
    """This shard's tasks of the build (when present and wanted) and of the vertical training
    sets; only the domains they use are built (a build's 900 domains take ~40 s)."""
    work = Workload()
    specs_file, tasks_file = run_dir / "domains" / "specs.jsonl", run_dir / "tasks" / "tasks.jsonl"
    if not (config.generated and tasks_file.exists()) and not config.vertical:
        raise UserError(
            f"nothing to simulate: {tasks_file} does not exist (run `pipeline build`) "
            "and no vertical domain is selected"
        )
    if config.generated and tasks_file.exists() and specs_file.exists():
        work.tasks = _selected(load_tasks(tasks_file.read_bytes(), str(tasks_file)), config)
        used = {t.domain for t in work.tasks}
        for line in specs_file.read_bytes().splitlines():
            spec = DomainSpec.model_validate_json(line)
            if spec.name in used:
                work.environments[spec.name] = await Environment.build(compile_domain(spec))
                work.stages[spec.name] = "general"
    vertical: list[Task] = []
    for name in config.vertical:
        training = await TRAINING[name]()
        mine = _selected(training.tasks, config)
        if not mine:
            continue
        work.environments[name] = training.env
        if training.user_env is not None:
            work.user_environments[name] = training.user_env
        work.stages[name] = "vertical"
        vertical += [await with_gold_state(t, training.env, training.user_env) for t in mine]
    if vertical:
        path = run_dir / "tasks" / f"vertical-{config.shard.file}"
        merge_jsonl(path, vertical, Task, lambda t: t.id)
    work.tasks += vertical
    return work


def _model(
    config: ModelConfig, side: Literal["agent", "user"], sim: SimulateConfig
) -> ModelFactory:
    if config.model == "offline":
        if side == "user":
            return scripted_user(latency_s=config.latency_s)
        injection = ErrorInjection(sim.bad_argument, sim.extra_read, sim.wrong_write)
        return gold_agent(injection, latency_s=config.latency_s)
    if config.base_urls:
        replicas = [
            openai_compatible(config.model, url, config.api_key, config.timeout_s)
            for url in config.base_urls
        ]
        return load_balanced(replicas)
    from pydantic_ai.models import infer_model

    try:
        return as_factory(infer_model(config.model))
    except Exception as exc:  # unknown provider, missing API key, missing extra
        raise UserError(f"--{side}-model {config.model!r}: {exc}") from exc


def _check_shards(run_dir: Path, shard: Shard) -> None:
    """Resuming with another shard count would re-run tasks another shard already wrote."""
    for path in shard_files(run_dir):
        match = SHARD_FILE.fullmatch(path.name)
        if match and int(match.group(2)) != shard.count:
            raise UserError(
                f"{path} comes from a run split into {match.group(2)} shards; resume it with "
                f"--shard I/{match.group(2)}, or use a new --run-dir"
            )


async def simulate(
    run_dir: Path,
    config: SimulateConfig,
    *,
    on_event: Callable[[Event], None] | None = None,
    on_start: Callable[[int, int], None] | None = None,
) -> RunSummary:
    """Run this shard's sessions not yet written; `on_start(total, done)` before the first."""
    _check_shards(run_dir, config.shard)
    work = await load_workload(run_dir, config)
    lines = [
        DomainTools(
            domain=name,
            stage=work.stages[name],
            tools=[t.openai_schema() for t in env.tools.values()],
        )
        for name, env in work.environments.items()
    ]
    path = run_dir / "simulate" / f"domains-{config.shard.file}"
    merge_jsonl(path, lines, DomainTools, lambda d: d.domain)
    scheduler_config = SchedulerConfig(
        concurrency=config.concurrency,
        trials=config.trials,
        limits=SessionLimits(max_turns=config.max_turns, timeout_s=config.timeout_s),
        retry=config.retry,
        trajectories_file=config.shard.file,
        events_file=f"events/{config.shard.file}",
    )
    async with Scheduler(
        work.environments,
        agent=_model(config.agent, "agent", config),
        user=_model(config.user, "user", config),
        run_dir=run_dir,
        config=scheduler_config,
        user_environments=work.user_environments,
    ) as scheduler:
        done = sum(
            (t.id, i) in scheduler.sink.done for t in work.tasks for i in range(config.trials)
        )
        if on_start is not None:
            on_start(len(work.tasks) * config.trials, done)
        if on_event is not None:
            scheduler.events.subscribe(on_event)
        summary = await scheduler.run(work.tasks)
    write_atomic(
        run_dir / "simulate" / f"summary-{config.shard.file.removesuffix('.jsonl')}.json",
        orjson.dumps(summary.model_dump(), option=orjson.OPT_INDENT_2),
    )
    return summary
