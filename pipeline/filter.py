"""The paper's filter funnel over simulated trajectories, each stage counted and explained.

1. validity: a well-formed conversation (system prompt first, no two user turns in a row, every
   tool result answering a call of the assistant message before it), every tool call naming a
   tool of the domain with a JSON object of arguments, a natural end within the turn limit, and
   no degenerate repetition in the assistant's text;
2. state: the final state hash equals the task's gold hash (both sides' for dual control);
3. exact_match: the agent's successful tool calls (names, canonical arguments) are the gold calls
   that succeed on replay, in order; for read-only tasks, whose state never changes, this is the
   decisive check.
Failed calls are not counted against a trajectory: one that hit tool errors and recovered is kept
when the later stages hold (the paper keeps them for robustness) and is marked `recovered`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field

from agentscaler.pipeline.files import write_atomic, write_jsonl
from agentscaler.pipeline.gc_pause import gc_paused
from agentscaler.pipeline.rundir import DomainTools, read_domains, read_tasks, read_trajectories
from agentscaler.runtime import Task, TerminationReason, Trajectory, UserError

Stage = Literal["validity", "state", "exact_match"]
STAGES: tuple[Stage, ...] = ("validity", "state", "exact_match")


class FilterConfig(BaseModel):
    stages: tuple[Stage, ...] = STAGES
    max_turns: int = Field(default=20, ge=1)
    ngram: int = Field(default=4, ge=1)
    max_repetition: float = Field(default=0.5, ge=0, le=1)  # share of repeated assistant n-grams


class Verdict(BaseModel):
    task_id: str
    trial: int
    domain: str
    accepted: bool
    stage: Stage | None = None  # where it was rejected
    reason: str | None = None
    recovered: bool = False  # it hit tool errors and still passed


def _arguments(arguments: str | None) -> Any:
    """Parsed call arguments (dicts compare regardless of key order), or the text that is not
    JSON."""
    try:
        return orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return arguments


def repetition(texts: Iterable[str], n: int) -> float:
    """The share of word n-grams that repeat an earlier one (0 for fewer than two n-grams)."""
    words = " ".join(texts).split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return 0.0 if len(grams) < 2 else 1 - len(set(grams)) / len(grams)


def _invalid(trajectory: Trajectory, tools: Collection[str], config: FilterConfig) -> str | None:
    """Why the trajectory is not a valid training conversation, or None."""
    messages = trajectory.messages
    if not messages or messages[0]["role"] != "system":
        return "does not start with the system prompt"
    if trajectory.termination is not TerminationReason.USER_STOP:
        return f"ended by {trajectory.termination.value}, not by the user"
    if trajectory.turns > config.max_turns:
        return f"{trajectory.turns} turns exceed the limit of {config.max_turns}"
    open_calls: set[str] = set()
    previous = "system"
    for i, message in enumerate(messages[1:], 1):
        role = message["role"]
        if role == "user" and previous == "user":
            return f"message {i}: two user turns in a row"
        if role == "tool" and message.get("tool_call_id") not in open_calls:
            return f"message {i}: a tool result that answers no call"
        if role == "assistant":
            open_calls = set()
            for call in message.get("tool_calls") or []:
                name, arguments = call["function"]["name"], call["function"]["arguments"]
                if name not in tools:
                    return f"message {i}: {name!r} is not a tool of {trajectory.domain}"
                try:
                    parsed = orjson.loads(arguments or "{}")
                except orjson.JSONDecodeError:
                    return f"message {i}: arguments of {name!r} are not JSON"
                if not isinstance(parsed, dict):
                    return f"message {i}: arguments of {name!r} are not a JSON object"
                open_calls.add(call["id"])
        previous = role
    if not any(m["role"] == "assistant" for m in messages):
        return "the agent never answered"
    said = [m.get("content") or "" for m in messages if m["role"] == "assistant"]
    ratio = repetition(said, config.ngram)
    if ratio > config.max_repetition:
        return f"assistant text repeats itself ({ratio:.0%} of {config.ngram}-grams)"
    return None


def judge(
    trajectory: Trajectory, task: Task, tools: Collection[str], config: FilterConfig
) -> Verdict:
    """One trajectory through the configured stages, in order."""
    agent_calls = [c for c in trajectory.tool_calls if c["side"] == "agent"]
    for stage in config.stages:
        reason: str | None = None
        if stage == "validity":
            reason = _invalid(trajectory, tools, config)
        elif stage == "state":
            if task.gold_hash is None:
                reason = "the task has no gold hash"
            elif trajectory.final_hash != task.gold_hash:
                reason = "final state differs from the gold state"
            elif task.gold_user_hash and trajectory.user_final_hash != task.gold_user_hash:
                reason = "the user's final state differs from the gold state"
        else:
            made = [
                (c["name"], _arguments(c["arguments"])) for c in agent_calls if c["error"] is None
            ]
            gold = [
                (g.name, g.arguments)
                for i, g in enumerate(task.gold_calls)
                if g.requestor == "agent" and i not in task.gold_failures
            ]
            if made != gold:
                reason = (
                    "calls differ from the gold: made "
                    f"{[n for n, _ in made]}, gold {[n for n, _ in gold]}"
                )
        if reason is not None:
            return Verdict(
                task_id=trajectory.task_id,
                trial=trajectory.trial,
                domain=trajectory.domain,
                accepted=False,
                stage=stage,
                reason=reason,
            )
    return Verdict(
        task_id=trajectory.task_id,
        trial=trajectory.trial,
        domain=trajectory.domain,
        accepted=True,
        recovered=any(c["error"] is not None for c in agent_calls),
    )


class FilterReport(BaseModel):
    verdicts: list[Verdict]
    # domain -> stage -> trajectories entering it, then leaving it ("in" counts all)
    funnel: dict[str, dict[str, tuple[int, int]]]

    @property
    def accepted(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.accepted]


def filter_trajectories(
    trajectories: Iterable[Trajectory],
    tasks: Mapping[str, Task],
    tools: Mapping[str, Collection[str]],
    config: FilterConfig | None = None,
) -> FilterReport:
    """Judge every trajectory (tasks by id, tool names by domain) and count the funnel."""
    config = config or FilterConfig()
    verdicts = []
    for t in trajectories:
        if t.task_id not in tasks:
            raise UserError(f"trajectory {t.key}: no task {t.task_id!r} in this run's task files")
        verdicts.append(judge(t, tasks[t.task_id], tools.get(t.domain, ()), config))
    entered = Counter(v.domain for v in verdicts)
    rejected = Counter((v.domain, v.stage) for v in verdicts if not v.accepted)
    funnel: dict[str, dict[str, tuple[int, int]]] = {}
    for domain in sorted(entered):
        remaining, stages = entered[domain], {}
        for stage in config.stages:
            stages[stage] = (remaining, remaining - rejected[domain, stage])
            remaining -= rejected[domain, stage]
        funnel[domain] = stages
    return FilterReport(verdicts=verdicts, funnel=funnel)


def filter_run(
    run_dir: Path,
    config: FilterConfig | None = None,
    domains: Mapping[str, DomainTools] | None = None,
) -> FilterReport:
    """`pipeline filter`: every shard's trajectories -> filter/verdicts.jsonl + funnel.json
    (`domains`: `read_domains(run_dir)`, when the caller has read it already)."""
    domains = domains if domains is not None else read_domains(run_dir)
    with gc_paused():
        report = filter_trajectories(
            read_trajectories(run_dir),
            read_tasks(run_dir),
            {name: {t["function"]["name"] for t in d.tools} for name, d in domains.items()},
            config,
        )
    report.verdicts.sort(key=lambda v: (v.task_id, v.trial))
    write_jsonl(run_dir / "filter" / "verdicts.jsonl", report.verdicts)
    write_atomic(
        run_dir / "filter" / "funnel.json",
        orjson.dumps(report.funnel, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS),
    )
    return report
