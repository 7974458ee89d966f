"""Simulate-stage scale benchmark (not a test): prints its figures and the ratios to targets.

10,000 sessions over the generated domains of a `pipeline build` (the full ../shared/corpora when
it is there, else the bundled corpus), offline policies (gold agent with the default error
injection, scripted user), an injected model latency of 1 s per call, 2,000 concurrent sessions,
no vertical domains; tasks x trials = sessions (trials 2 over the build's first 5,000 tasks).

- sessions/s, and achieved / ideal (target >= 0.9). Each session's model calls run one after
  another, `latency` seconds each, so C slots ideally take sum(model calls) x latency / C (no
  rounding: a lower bound). Also shown: the makespan of the scheduler's own job order on C
  zero-overhead workers (the last wave's tail included), which no real run can beat either.
  The measured time is the scheduler's `RunSummary.duration_s` (sessions only); the wall time
  of `simulate()`, workload loading (environments from domains/specs.jsonl) included, is
  printed too.
- peak RSS during simulate (ru_maxrss; the build runs in a child process), and KB per
  concurrent session beyond the RSS once the workload is loaded.
- filter + export on the result: seconds, and their share of the simulate time (target < 10%).

The build is not timed with the simulation; pass --build-dir to keep it and reuse it next time
(reused when its tasks/tasks.jsonl exists).

Usage: uv run python bench/simulate_scale.py [--sessions 10000] [--concurrency 2000]
       [--latency 1.0] [--trials 2] [--build-dir /tmp/simscale-build] [--corpus DIR]
The machine is noisy (2 cores): compare the ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import heapq
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import orjson
import psutil

from agentscaler.pipeline.export import export_run
from agentscaler.pipeline.filter import filter_run
from agentscaler.pipeline.simulate import ModelConfig, SimulateConfig, simulate
from agentscaler.runtime import (
    Event,
    ModelCalled,
    RunSummary,
    SessionFailed,
    SessionFinished,
    SessionStarted,
)
from agentscaler.runtime.counters import percentile

ROOT = Path(__file__).resolve().parent.parent
SHARED_CORPUS = ROOT.parent / "shared" / "corpora"
BUNDLED_CORPUS = ROOT / "pipeline" / "corpus"
MiB = 2**20


def build(corpus: Path, build_dir: Path) -> float:
    """`pipeline build` in a child process (its memory stays out of ours); returns seconds,
    0 when build_dir already holds a build."""
    tasks, inputs = build_dir / "tasks" / "tasks.jsonl", build_dir / "bench-inputs.json"
    if tasks.exists():
        earlier = orjson.loads(inputs.read_bytes()).get("corpus") if inputs.exists() else None
        note = "" if earlier in (None, str(corpus)) else f" (WARNING: built from {earlier})"
        print(f"build: reusing {build_dir}{note}")
        return 0.0
    print(f"build: pipeline build --corpus {corpus} --run-dir {build_dir} ...", flush=True)
    t0 = time.perf_counter()
    command = [sys.executable, "-m", "agentscaler.pipeline.cli", "build"]
    command += ["--corpus", str(corpus), "--run-dir", str(build_dir)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"build failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    seconds = time.perf_counter() - t0
    (build_dir / "bench-inputs.json").write_bytes(orjson.dumps({"corpus": str(corpus)}))
    last = [line for line in done.stdout.splitlines() if line.startswith("seconds:")]
    print(f"build: {seconds:.1f}s ({last[-1] if last else 'done'})")
    return seconds


def prepare(build_dir: Path, run_dir: Path, sessions: int, trials: int) -> tuple[list[str], int]:
    """A run directory with the build's domains and its first sessions / trials tasks;
    returns the task ids in the scheduler's job order (most gold calls first, then by domain)
    and how many domains."""
    if sessions % trials:
        sys.exit(f"--sessions {sessions} is not a multiple of --trials {trials}")
    needed = sessions // trials
    lines = (build_dir / "tasks" / "tasks.jsonl").read_bytes().splitlines()
    if len(lines) < needed:
        sys.exit(
            f"the build has {len(lines)} tasks, {needed} needed for {sessions} sessions at "
            f"{trials} trials: raise --trials"
        )
    chosen = lines[:needed]
    (run_dir / "tasks").mkdir(parents=True)
    (run_dir / "domains").mkdir()
    (run_dir / "tasks" / "tasks.jsonl").write_bytes(b"\n".join(chosen) + b"\n")
    shutil.copyfile(build_dir / "domains" / "specs.jsonl", run_dir / "domains" / "specs.jsonl")
    tasks = [orjson.loads(line) for line in chosen]
    ordered = sorted(tasks, key=lambda t: (-len(t["gold_calls"]), t["domain"]))
    return [t["id"] for t in ordered], len({t["domain"] for t in tasks})


@dataclass
class Watch:
    """Folds the run's events: model calls per session, session overheads, the last start."""

    calls: Counter[tuple[str, int]] = field(default_factory=Counter)
    sides: Counter[str] = field(default_factory=Counter)
    model_ms: float = 0.0
    session_s: dict[tuple[str, int], float] = field(default_factory=dict)  # wall per session
    failed: int = 0
    last_start: float = 0.0
    # set by on_start: workload loaded, run about to begin
    start_t: float = 0.0
    start_rss: int = 0
    start_cpu: float = 0.0
    total: int = 0

    def __call__(self, event: Event) -> None:
        if isinstance(event, ModelCalled):
            self.calls[event.task_id, event.trial] += 1
            self.sides[event.side] += 1
            self.model_ms += event.latency_ms
        elif isinstance(event, SessionStarted):
            self.last_start = time.perf_counter()
        elif isinstance(event, SessionFinished):
            self.session_s[event.task_id, event.trial] = event.duration_s
        elif isinstance(event, SessionFailed):
            self.failed += 1

    def on_start(self, total: int, done: int) -> None:
        self.total = total
        self.start_rss = psutil.Process().memory_info().rss
        self.start_cpu = time.process_time()
        self.start_t = time.perf_counter()


class Sampler(threading.Thread):
    """RSS every `interval` seconds: a cross-check of ru_maxrss, and how RSS grows over the run
    (with concurrency held constant, growth after the first wave is not per live session)."""

    def __init__(self, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.interval, self.stop = interval, threading.Event()
        self.samples: list[tuple[float, int]] = []
        self._proc = psutil.Process()

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            self.samples.append((time.perf_counter(), self._proc.memory_info().rss))

    def peak(self) -> tuple[float, int]:
        return max(self.samples, key=lambda s: s[1], default=(0.0, 0))

    def at(self, t: float) -> int:
        """The last sample taken at or before t."""
        return next((rss for ts, rss in reversed(self.samples) if ts <= t), 0)


def makespan(durations: list[float], slots: int) -> tuple[float, float]:
    """Zero-overhead workers pulling jobs in order: (makespan, when the last job starts)."""
    free = [0.0] * min(slots, len(durations))
    heapq.heapify(free)
    last_start = 0.0
    for d in durations:
        last_start = heapq.heappop(free)
        heapq.heappush(free, last_start + d)
    return max(free, default=0.0), last_start


def run_simulate(
    run_dir: Path, config: SimulateConfig, watch: Watch, loop: str
) -> tuple[RunSummary, float]:
    t0 = time.perf_counter()
    summary = anyio.run(
        lambda: simulate(run_dir, config, on_event=watch, on_start=watch.on_start),
        backend_options={"use_uvloop": loop == "uvloop"},
    )
    return summary, time.perf_counter() - t0


def sharded(args: argparse.Namespace, run_dir: Path, n_domains: int) -> None:
    """The same sessions as `--processes` shard processes (`pipeline simulate --shard I/N`),
    the concurrency split between them: the way past one event-loop thread. Times come from
    the shards' event logs (first session start to last session end); RSS is the sum over the
    shard processes, sampled."""
    n = args.processes
    command = [
        *(sys.executable, "-m", "agentscaler.pipeline.cli", "simulate"),
        *("--vertical", "none", "--trials", str(args.trials)),
        *("--concurrency", str(args.concurrency // n), "--run-dir", str(run_dir)),
        *("--agent-latency-s", str(args.latency), "--user-latency-s", str(args.latency)),
    ]
    print(
        f"simulate: {args.sessions} sessions over {n_domains} domains as {n} shard processes "
        f"x concurrency {args.concurrency // n}, {args.latency:g}s per model call",
        flush=True,
    )
    started = time.perf_counter()
    procs = [
        psutil.Popen([*command, "--shard", f"{i}/{n}"], stdout=subprocess.DEVNULL) for i in range(n)
    ]
    peak = 0
    while any(p.poll() is None for p in procs):
        rss = 0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                rss += p.memory_info().rss
        peak = max(peak, rss)
        time.sleep(0.25)
    wall = time.perf_counter() - started
    if any(p.returncode for p in procs):
        sys.exit(f"a shard failed: {[p.returncode for p in procs]}")
    first = last = None
    calls = sessions = 0
    for log in (run_dir / "events").glob("*.jsonl"):
        for line in log.read_bytes().splitlines():
            event = orjson.loads(line)
            kind = event["type"]
            if kind == "session_started":
                first = event["t"] if first is None else min(first, event["t"])
            elif kind == "session_finished":
                sessions += 1
                last = event["t"] if last is None else max(last, event["t"])
            elif kind == "model_called":
                calls += 1
    duration = (last or 0.0) - (first or 0.0)
    ideal = calls * args.latency / args.concurrency
    t0 = time.perf_counter()
    filter_run(run_dir)
    export_run(run_dir)
    fe = time.perf_counter() - t0
    print(
        f"    {sessions} sessions, {calls} model calls; wall {wall:.1f}s (loading included); "
        f"sessions {duration:.1f}s, {sessions / duration:.1f} sessions/s; ideal {ideal:.1f}s "
        f"-> achieved/ideal {ideal / duration:.3f} (target >= 0.9)\n"
        f"    peak RSS of the shards together {peak / MiB:.0f} MiB\n"
        f"    filter + export {fe:.1f}s = {fe / duration:.3f} of the simulate time (target < 0.10)"
    )


def main(args: argparse.Namespace) -> None:
    corpus = args.corpus
    if corpus is None:
        if SHARED_CORPUS.is_dir():
            corpus = SHARED_CORPUS
        else:
            print(f"NOTE: {SHARED_CORPUS} is absent: building the bundled corpus {BUNDLED_CORPUS}")
            corpus = BUNDLED_CORPUS
    corpus = corpus.resolve()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores, event loop: {args.loop}; "
        f"corpus {corpus}"
    )
    with tempfile.TemporaryDirectory(prefix="simulate-scale-") as tmp:
        build_dir = (args.build_dir or Path(tmp) / "build").resolve()
        build_s = build(corpus, build_dir)
        run_dir = args.run_dir or Path(tmp) / "run"
        if run_dir.exists():
            sys.exit(f"{run_dir} exists: the simulation would resume it; pick a new --run-dir")
        task_ids, n_domains = prepare(build_dir, run_dir, args.sessions, args.trials)
        if args.processes > 1:
            sharded(args, run_dir, n_domains)
            return
        config = SimulateConfig(
            trials=args.trials,
            concurrency=args.concurrency,
            vertical=(),
            agent=ModelConfig(latency_s=args.latency),
            user=ModelConfig(latency_s=args.latency),
        )
        print(
            f"simulate: {len(task_ids)} tasks over {n_domains} domains x {args.trials} trials = "
            f"{args.sessions} sessions, concurrency {args.concurrency}, "
            f"{args.latency:g}s per model call, errors injected (bad argument "
            f"{config.bad_argument}, extra read {config.extra_read}, wrong write "
            f"{config.wrong_write}) -> {run_dir}",
            flush=True,
        )
        watch, sampler = Watch(), Sampler()
        gc.collect()
        base_rss = psutil.Process().memory_info().rss
        sampler.start()
        cpu0 = time.process_time()
        summary, wall = run_simulate(run_dir, config, watch, args.loop)
        cpu = time.process_time() - watch.start_cpu
        end_t = time.perf_counter()
        sampler.stop.set()
        sampler.join()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        load_s = watch.start_t - (end_t - wall)
        load_cpu = watch.start_cpu - cpu0

        t0 = time.perf_counter()
        report = filter_run(run_dir)
        filter_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        counts = export_run(run_dir)
        export_s = time.perf_counter() - t0
        traj_mb = sum(p.stat().st_size for p in (run_dir / "trajectories").glob("*")) / MiB

    duration = summary.duration_s
    calls = sum(watch.calls.values())
    lat = args.latency
    ideal = calls * lat / args.concurrency
    jobs = [(tid, trial) for tid in task_ids for trial in range(args.trials)]
    sched_ideal, sched_last = makespan([watch.calls[k] * lat for k in jobs], args.concurrency)
    # what each session spent beyond its model calls' latency: event-loop lag and CPU
    overhead = sorted(s - watch.calls[k] * lat for k, s in watch.session_s.items())
    ratio = ideal / duration
    sessions_s = summary.written / duration
    live = min(args.concurrency, args.sessions)
    per_session_kb = (peak - watch.start_rss) / live / 1024
    fe = filter_s + export_s

    built = f"{build_s:.1f}s" if build_s else "reused"
    print(f"build: {built} (not part of the simulate time)")
    print(
        f"simulate: {summary.written} written, {summary.failed} failed, {watch.failed} crashed "
        f"events; terminations {dict(sorted(summary.by_termination.items()))}"
    )
    print(
        f"    model calls {calls} ({dict(watch.sides)}), {calls / max(len(watch.calls), 1):.2f} "
        f"per session (min {min(watch.calls.values(), default=0)}, max "
        f"{max(watch.calls.values(), default=0)}); mean call "
        f"{watch.model_ms / max(calls, 1):.0f} ms"
    )
    print(
        f"    simulate() wall {wall:.1f}s = workload loading {load_s:.1f}s "
        f"({load_cpu:.1f}s CPU) + sessions {duration:.1f}s (RunSummary.duration_s) + closing "
        f"{wall - load_s - duration:.1f}s"
    )
    print(
        f"    {sessions_s:.1f} sessions/s; ideal {ideal:.1f}s (sum of calls x {lat:g}s / "
        f"{args.concurrency}) -> achieved/ideal {ratio:.3f} (target >= 0.9)"
    )
    print(
        f"    scheduler job order on {args.concurrency} zero-overhead slots: {sched_ideal:.1f}s "
        f"-> achieved/that {sched_ideal / duration:.3f}; the last session starts at "
        f"{watch.last_start - watch.start_t:.1f}s (ideal {sched_last:.1f}s). Ceilings on "
        f"achieved/ideal: the job order's tail {ideal / sched_ideal:.3f}, CPU on one event-loop "
        f"thread (ideal / CPU seconds) {ideal / cpu:.3f}"
    )
    print(
        f"    per-session overhead beyond its calls x {lat:g}s: mean "
        f"{sum(overhead) / max(len(overhead), 1):.2f}s p50 {percentile(overhead, 50):.2f}s p99 "
        f"{percentile(overhead, 99):.2f}s max {max(overhead, default=0):.2f}s; CPU {cpu:.1f}s over "
        f"{duration:.1f}s ({cpu / duration:.0%} of one core), "
        f"{cpu / max(calls, 1) * 1e3:.2f} ms per model call"
    )
    peak_t, peak_sampled = sampler.peak()
    print(
        f"memory: base {base_rss / MiB:.0f} MiB, workload loaded {watch.start_rss / MiB:.0f} MiB, "
        f"peak {peak / MiB:.0f} MiB (sampled {peak_sampled / MiB:.0f} MiB at "
        f"{peak_t - watch.start_t:.0f}s into the run); {per_session_kb:.0f} KB per "
        f"concurrent session beyond the loaded workload ({live} live), "
        f"{(peak - base_rss) / live / 1024:.0f} KB beyond the base"
    )
    quarters = [watch.start_t + duration * q / 4 for q in (1, 2, 3, 4)]
    print(
        "    RSS at 1/4, 2/4, 3/4, 4/4 of the run: "
        + ", ".join(f"{sampler.at(t) / MiB:.0f}" for t in quarters)
        + " MiB"
    )
    print(
        f"filter: {filter_s:.1f}s ({len(report.accepted)} of {len(report.verdicts)} accepted); "
        f"export: {export_s:.1f}s ({counts}); trajectories {traj_mb:.0f} MiB"
    )
    print(
        f"    (filter + export) / simulate = {fe:.1f}s / {duration:.1f}s = {fe / duration:.3f} "
        "(target < 0.10)"
    )
    rows = [
        ("sessions", f"{summary.written}", ""),
        ("sessions/s", f"{sessions_s:.1f}", f"ideal {args.sessions / ideal:.1f}"),
        ("achieved / ideal", f"{ratio:.3f}", ">= 0.9"),
        ("simulate (sessions)", f"{duration:.1f}s", f"ideal {ideal:.1f}s"),
        ("simulate() wall", f"{wall:.1f}s", f"loading {load_s:.1f}s"),
        ("peak RSS", f"{peak / MiB:.0f} MiB", f"{per_session_kb:.0f} KB/session"),
        ("filter + export", f"{fe:.1f}s", f"{fe / duration:.3f} of simulate, < 0.10"),
        ("build", built, "not timed with simulate"),
    ]
    print()
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"  {name:<{width}}  {value:>10}  {note}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=2_000)
    parser.add_argument("--latency", type=float, default=1.0, help="seconds per model call")
    parser.add_argument("--trials", type=int, default=2, help="sessions per task")
    parser.add_argument(
        "--processes", type=int, default=1, help="run as this many `--shard` processes"
    )
    parser.add_argument(
        "--build-dir", type=Path, help="keep the build here; reused when it holds one"
    )
    parser.add_argument(
        "--corpus", type=Path, help="default: ../shared/corpora, else the bundled corpus"
    )
    parser.add_argument("--run-dir", type=Path, help="keep the simulated run here (must be new)")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop")
    main(parser.parse_args())
