"""Run-directory files are written atomically (write, then rename): a killed stage leaves the
previous file or the new one, never half of one."""

from __future__ import annotations

from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
