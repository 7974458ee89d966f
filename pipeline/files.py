"""Run-directory files are written atomically (write, then rename): a killed stage leaves the
previous file or the new one, never half of one. The temporary name carries the process id, so
shards of one run writing the same file do not write into each other's."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f"{path.suffix}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def write_jsonl(path: Path, records: Iterable[BaseModel]) -> None:
    """One JSON line per pydantic record, written atomically."""
    write_atomic(path, b"".join(r.model_dump_json().encode() + b"\n" for r in records))
