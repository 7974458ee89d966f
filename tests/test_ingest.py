"""Ingest reads every format from real samples, reports bad records, dedupes and tags."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentscaler.pipeline.cli import main
from agentscaler.pipeline.ingest import (
    IngestConfig,
    RawTool,
    ToolSpec,
    ingest,
    register_reader,
)
from agentscaler.pipeline.ingest.readers import _REGISTRY, _RUNTIME

SAMPLES = Path(__file__).parent / "data" / "corpora"


@pytest.fixture(scope="module")
def everything() -> dict[str, ToolSpec]:
    report = ingest(IngestConfig(corpus_root=SAMPLES, exclude_tags=()))
    assert report.rejections == []
    return {t.name: t for t in report.tools}


def test_every_sample_source_is_read(everything: dict[str, ToolSpec]) -> None:
    """Each corpus format yields its tools (counts from the sample files themselves)."""
    report = ingest(IngestConfig(corpus_root=SAMPLES, exclude_tags=()))
    kept = {name: c.kept for name, c in report.sources.items()}
    assert kept == {
        "acebench": 12,
        "api-bank": 5,
        "bfcl": 19,
        "gorilla-apizoo": 6,
        "seal-tools": 10,
        "stabletoolbench": 7,
        "tau-bench": 16,
        "tau2-bench": 6,
        "toolalpaca": 8,
    }
    assert report.sources["tau-bench"].files == 1  # the tasks file is not a tool file


def test_bfcl_and_java_types_map_to_json_schema(everything: dict[str, ToolSpec]) -> None:
    """BFCL's dict/float/any and Java's String/HashMap become standard JSON Schema types."""
    java = everything["GeometryPresentation_createPresentation"]
    assert java.original_name == "GeometryPresentation.createPresentation"
    assert java.parameters["type"] == "object"
    assert java.parameters["properties"]["controller"] == {
        "description": java.parameters["properties"]["controller"]["description"]
    }  # BFCL "any": no type constraint
    ticket = everything["close_ticket"]
    assert ticket.parameters["properties"]["ticket_id"]["type"] == "integer"
    assert ticket.returns["properties"]["status"]["type"] == "string"
    assert not ticket.returns_inferred


def test_format_specific_fields(everything: dict[str, ToolSpec]) -> None:
    """StableToolBench, Seal-Tools, API-Bank, ToolAlpaca, Gorilla and tau2 specifics."""
    yt = everything["Simple_YouTube_Search_Search"]  # RapidAPI tool + API name
    assert yt.parameters["required"] == ["query"]
    assert set(yt.parameters["properties"]) == {"query", "type", "safesearch"}
    assert yt.parameters["properties"]["safesearch"]["type"] == "boolean"  # "BOOLEAN"
    assert yt.returns["properties"]["results"]["type"] == "array"  # from template_response
    seal = everything["analyzeEvidence"]
    assert seal.parameters["properties"]["evidence_type"]["type"] == "string"  # "str"
    alarm = everything["AddAlarm"]
    assert alarm.parameters["required"] == ["token", "time"]
    holidays = everything["LongWeekendLongWeekend"]  # an OpenAPI operation
    assert holidays.parameters["required"] == ["year", "countryCode"]
    assert holidays.source.record == "#0 GET /api/v3/LongWeekend/{year}/{countryCode}"
    docs = next(
        t
        for t in everything.values()
        if t.original_name == "Google Docs API - documents.batchUpdate"
    )
    assert docs.name == "Google_Docs_API_documents_batchUpdate"
    assert docs.parameters["required"] == ["documentId"]
    task = everything["create_task"]  # tau2: pydantic JSON Schema, returns_schema kept
    assert task.parameters["required"] == ["user_id", "title"]
    assert task.source.record == "mock/MockTools#0"
    assert not task.returns_inferred


def test_returns_are_inferred_when_absent(everything: dict[str, ToolSpec]) -> None:
    """A spec without an output schema gets one, marked as inferred."""
    java = everything["GeometryPresentation_createPresentation"]
    assert java.returns_inferred and java.returns["type"] == "object"


def test_bad_records_are_reported_and_skipped(tmp_path: Path) -> None:
    """Invalid JSON, a non-object schema, an unknown type and a missing name are each reported
    with file, record and reason; the good records of the same files are kept."""
    corpus = tmp_path / "mine"
    corpus.mkdir()
    good = {
        "name": "ok_tool",
        "description": "fine",
        "parameters": {"type": "object", "properties": {}},
    }
    lines = [
        json.dumps({"id": "a", "question": [], "function": [good]}),
        "{not json",
        json.dumps(
            {
                "id": "b",
                "question": [],
                "function": [{**good, "name": "s", "parameters": {"type": "string"}}],
            }
        ),
        json.dumps(
            {
                "id": "c",
                "question": [],
                "function": [
                    {
                        **good,
                        "name": "t",
                        "parameters": {"type": "dict", "properties": {"x": {"type": "quaternion"}}},
                    }
                ],
            }
        ),
        json.dumps({"id": "d", "question": [], "function": [{**good, "name": None}]}),
    ]
    (corpus / "q.jsonl").write_text("\n".join(lines) + "\n")
    report = ingest(IngestConfig(corpus_root=tmp_path))
    assert [t.name for t in report.tools] == ["ok_tool"]
    got = {(r.source.file, r.source.record, r.reason) for r in report.rejections}
    assert got == {
        ("q.jsonl", "line 2", "invalid_json"),
        ("q.jsonl", "line 3 fn 0", "schema_not_object"),
        ("q.jsonl", "line 4 fn 0", "unknown_type"),
        ("q.jsonl", "line 5 fn 0", "missing_name"),
    }
    assert "quaternion" in next(r.detail for r in report.rejections if r.reason == "unknown_type")
    assert report.sources["mine"].rejected == {
        "invalid_json": 1,
        "schema_not_object": 1,
        "unknown_type": 1,
        "missing_name": 1,
    }


def test_workers_read_files_into_the_same_report(tmp_path: Path) -> None:
    """Files read in two worker processes give the report one process gives: tools, merges
    across files, rejections and counts, in the same order; `meanwhile` runs once, while the
    two workers are alive."""
    for source in ("bfcl", "seal-tools", "toolalpaca"):
        shutil.copytree(SAMPLES / source, tmp_path / source)
    (tmp_path / "bfcl" / "broken.json").write_text('{"name": "x", ')
    (tmp_path / "mine").mkdir()
    shutil.copy(SAMPLES / "seal-tools" / "tool.jsonl", tmp_path / "mine" / "tool.jsonl")
    config = IngestConfig(corpus_root=tmp_path, exclude_tags=())
    workers: list[int] = []
    one = ingest(config)
    two = ingest(
        config, workers=2, meanwhile=lambda: workers.append(len(multiprocessing.active_children()))
    )
    assert workers == [2]
    assert one.rejections and sum(c.merged for c in one.sources.values())
    assert two.model_dump_json() == one.model_dump_json()


def test_duplicates_merge_and_names_stay_unique(tmp_path: Path) -> None:
    """Exact and near duplicates fold into one tool; different tools sharing a name get suffixes."""
    corpus = tmp_path / "dups"
    corpus.mkdir()
    base = {
        "name": "get.weather",
        "description": "Get the weather.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    near = {**base, "description": "get the  weather"}
    other = {**base, "parameters": {"type": "object", "properties": {"zip": {"type": "integer"}}}}
    rows = [
        {"id": str(i), "question": [], "function": [f]}
        for i, f in enumerate([base, base, near, other])
    ]
    (corpus / "q.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = ingest(IngestConfig(corpus_root=tmp_path))
    assert [t.name for t in report.tools] == ["get_weather", "get_weather_2"]
    assert len(report.tools[0].merged_from) == 2
    assert report.sources["dups"].merged == 2


def test_evaluation_benchmarks_are_excluded_by_default() -> None:
    """The default build leaves out tau-bench, tau2-bench and ACEBench tools; BFCL is tagged."""
    report = ingest(IngestConfig(corpus_root=SAMPLES))
    corpora = {t.source.corpus for t in report.tools}
    assert corpora.isdisjoint({"tau-bench", "tau2-bench", "acebench"})
    assert report.sources["tau-bench"].excluded == 16
    bfcl = next(t for t in report.tools if t.source.corpus == "bfcl")
    assert "eval:bfcl" in bfcl.source.tags
    no_bfcl = ingest(IngestConfig(corpus_root=SAMPLES, exclude_tags=("eval:bfcl",)))
    assert all(t.source.corpus != "bfcl" for t in no_bfcl.tools)


def test_users_register_their_own_reader(tmp_path: Path) -> None:
    """A user's format is detected and read without touching the built-in readers."""

    def read(record: Any, rid: str) -> Iterator[RawTool]:
        for op in record["ops"]:
            yield RawTool(
                op["op"], op["doc"], {"type": "object", "properties": {}}, None, f"{rid}/{op['op']}"
            )

    register_reader("my_ops", lambda r: isinstance(r, dict) and "ops" in r, read)
    try:
        (tmp_path / "x").mkdir()
        for op in ("ping", "pong"):  # two files: more than one, so workers would be used
            (tmp_path / "x" / f"{op}.json").write_text(
                json.dumps({"ops": [{"op": op, "doc": f"{op.title()}."}]})
            )
        report = ingest(IngestConfig(corpus_root=tmp_path))
        assert [(t.name, t.source.record) for t in report.tools] == [
            ("ping", "record/ping"),
            ("pong", "record/pong"),
        ]
        # With a second thread alive, workers would come from a forkserver, which never saw
        # this registration: ingest reads in this process instead of losing the format.
        stop = threading.Event()
        waiter = threading.Thread(target=stop.wait)
        waiter.start()
        try:
            again = ingest(IngestConfig(corpus_root=tmp_path), workers=2)
        finally:
            stop.set()
            waiter.join()
        assert again.model_dump_json() == report.model_dump_json()
    finally:
        _REGISTRY.pop("my_ops")
        _RUNTIME.discard("my_ops")


def test_ingest_cli_is_deterministic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`pipeline ingest` prints per-source counts; two runs write byte-identical files."""
    outputs = []
    for run in ("a", "b"):
        assert (
            main(
                [
                    "ingest",
                    "--corpus",
                    str(SAMPLES),
                    "--run-dir",
                    str(tmp_path / run),
                    "--include-eval",
                ]
            )
            == 0
        )
        outputs.append(
            [
                (tmp_path / run / "corpus" / f).read_bytes()
                for f in ("tools.jsonl", "rejections.jsonl", "report.json")
            ]
        )
    assert outputs[0] == outputs[1]
    assert "seal-tools" in capsys.readouterr().out
    assert main(["ingest", "--corpus", str(tmp_path / "missing")]) == 2
