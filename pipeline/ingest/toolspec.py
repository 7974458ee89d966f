"""The ToolSpec contract (DESIGN.md) and the record of a rejected input."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Source(BaseModel):
    """Where a record came from: corpus (top folder), file (relative path), record (line/index)."""

    model_config = ConfigDict(frozen=True)

    corpus: str
    file: str
    record: str
    tags: tuple[str, ...] = ()

    def where(self) -> str:
        return f"{self.corpus}/{self.file}:{self.record}"


class ToolSpec(BaseModel):
    """A normalized tool: a valid unique identifier, JSON Schema parameters and returns."""

    model_config = ConfigDict(frozen=True)

    name: str
    original_name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema, type "object"
    returns: dict[str, Any]  # JSON Schema
    returns_inferred: bool = False
    source: Source
    merged_from: tuple[Source, ...] = ()  # duplicates folded into this one


class Rejection(BaseModel):
    """A record that was reported and skipped, and why."""

    source: Source
    reason: str  # a short category: invalid_json, missing_name, unknown_type, ...
    detail: str
