"""What `pipeline build` made, in numbers: written to summary.json and shown as a table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from pydantic import BaseModel
from rich.table import Table

from agentscaler.pipeline.build import DomainBuild
from agentscaler.pipeline.graph import Domains
from agentscaler.pipeline.ingest import IngestReport
from agentscaler.pipeline.llm import PassReport


class Distribution(BaseModel):
    """Quartiles of a count over domains."""

    min: int
    p25: int
    median: int
    p75: int
    max: int

    @classmethod
    def of(cls, values: Sequence[int]) -> Distribution:
        v = sorted(values) or [0]
        p25, median, p75 = (v[min(len(v) - 1, int(q * len(v)))] for q in (0.25, 0.5, 0.75))
        return cls(min=v[0], p25=p25, median=median, p75=p75, max=v[-1])

    def __str__(self) -> str:
        return f"{self.min} / {self.p25} / {self.median} / {self.p75} / {self.max}"


class BuildSummary(BaseModel):
    records_read: int
    tools_kept: int
    tools_merged: int
    tools_excluded: int
    rejected: dict[str, int]  # ingest rejections by reason
    edges: int
    communities: int
    community_sizes: Distribution
    domains_kept: int
    domains_dropped: dict[str, int]  # by reason
    tools_passing: int
    tools_failing: dict[str, int]  # execution-check failures by error kind
    tables_per_domain: Distribution
    tasks: int
    tasks_changing_state: int
    tasks_per_domain: Distribution
    domains_without_tasks: int
    llm: PassReport | None  # the model passes' totals, when they ran

    @classmethod
    def of(
        cls, report: IngestReport, graph: Domains, builds: Sequence[DomainBuild]
    ) -> BuildSummary:
        rejected: Counter[str] = Counter()
        for counts in report.sources.values():
            rejected.update(counts.rejected)
        kept = [b for b in builds if b.spec is not None]
        tasks = [t for b in builds for t in b.tasks]
        return cls(
            records_read=sum(c.read for c in report.sources.values()),
            tools_kept=len(report.tools),
            tools_merged=sum(c.merged for c in report.sources.values()),
            tools_excluded=sum(c.excluded for c in report.sources.values()),
            rejected=dict(sorted(rejected.items())),
            edges=graph.edges,
            communities=len(graph.domains),
            community_sizes=Distribution.of([len(d) for d in graph.domains]),
            domains_kept=len(kept),
            domains_dropped=dict(
                sorted(
                    Counter(str(b.reason).split(":")[0] for b in builds if b.spec is None).items()
                )
            ),
            tools_passing=sum(len(b.spec.tools) for b in kept if b.spec is not None),
            tools_failing=dict(
                sorted(Counter(f.kind for b in builds for f in b.failures.values()).items())
            ),
            tables_per_domain=Distribution.of([len(b.spec.tables) for b in kept if b.spec]),
            tasks=len(tasks),
            tasks_changing_state=sum(1 for t in tasks if not t.gold_outputs),
            tasks_per_domain=Distribution.of([len(b.tasks) for b in kept]),
            domains_without_tasks=sum(1 for b in kept if not b.tasks),
            llm=_total([b.llm for b in builds if b.llm is not None]),
        )

    def table(self, title: str) -> Table:
        def by_reason(counts: dict[str, int]) -> str:
            return ", ".join(f"{reason} {n}" for reason, n in counts.items()) or "none"

        table = Table(title=title)
        table.add_column("stage")
        table.add_column("result")
        table.add_row(
            "ingest",
            f"{self.records_read} records -> {self.tools_kept} tools ({self.tools_merged} merged, "
            f"{self.tools_excluded} excluded); rejected: {by_reason(self.rejected)}",
        )
        table.add_row(
            "graph",
            f"{self.edges} edges, {self.communities} communities; "
            f"size min/p25/median/p75/max {self.community_sizes}",
        )
        table.add_row(
            "domains",
            f"{self.domains_kept} kept, dropped: {by_reason(self.domains_dropped)}; "
            f"{self.tools_passing} tools pass the execution check, failing: "
            f"{by_reason(self.tools_failing)}; tables per domain {self.tables_per_domain}",
        )
        table.add_row(
            "tasks",
            f"{self.tasks} ({self.tasks_changing_state} change state, "
            f"{self.tasks - self.tasks_changing_state} read-only); per domain {self.tasks_per_domain}"
            f"; {self.domains_without_tasks} domains without a task",
        )
        if self.llm is not None:
            table.add_row(
                "model passes",
                f"{self.llm.edges_dropped} dependency edges dropped; "
                f"{self.llm.intents_rewritten} intents rewritten, {self.llm.intents_refused} "
                f"rewrites refused (a needed value lost); {len(self.llm.failures)} model failures "
                "(domains/check.json)",
            )
        return table


def _total(reports: Sequence[PassReport]) -> PassReport | None:
    if not reports:
        return None
    return PassReport(
        edges_dropped=sum(r.edges_dropped for r in reports),
        intents_rewritten=sum(r.intents_rewritten for r in reports),
        intents_refused=sum(r.intents_refused for r in reports),
        failures=[f for r in reports for f in r.failures],
    )
