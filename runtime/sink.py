"""Append-only JSONL trajectory files that a killed run resumes from.

Each trajectory is one `os.write` of one complete line to a file opened with O_APPEND, so a
SIGKILL leaves at most one torn last line; opening the sink cuts it off and reports it, and the
(task id, trial) keys already present are skipped by the scheduler. Nothing is lost (a session
not yet written is re-run) and nothing is duplicated (a written one is never re-run).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Self

import orjson
import structlog

from .errors import ClosedError, UserError
from .trajectory import Trajectory

log = structlog.get_logger(__name__)


class TrajectorySink:
    """Streams trajectories to `path`, one JSON line each, flushed per record."""

    def __init__(self, path: str | Path, *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync  # also survive power loss, at a disk sync per trajectory
        self.done: set[tuple[str, int]] = set()
        self.written = 0
        self._fd: int | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        if self._closed:
            raise ClosedError(f"trajectory sink {self.path} was closed; make a new one")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.done = self._recover()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _recover(self) -> set[tuple[str, int]]:
        """Cut a torn last line and collect the keys of the complete ones."""
        if not self.path.exists():
            return set()
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            log.warning("sink_torn_line_dropped", path=str(self.path), bytes=len(data) - end)
            with self.path.open("r+b") as fh:
                fh.truncate(end)
        done: set[tuple[str, int]] = set()
        for no, line in enumerate(data[:end].splitlines(), 1):
            try:
                record = orjson.loads(line)
                key = (str(record["task_id"]), int(record["trial"]))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise UserError(f"{self.path}:{no}: not a trajectory record: {exc}") from exc
            if key in done:
                raise UserError(f"{self.path}:{no}: duplicate trajectory {key}")
            done.add(key)
        return done

    def write(self, trajectory: Trajectory) -> None:
        """Append one trajectory as one line; a key already written is refused."""
        if self._fd is None:
            raise ClosedError(f"trajectory sink {self.path} is not open")
        key = trajectory.key
        if key in self.done:
            raise UserError(f"trajectory {key} is already in {self.path}")
        line = memoryview(trajectory.model_dump_json().encode() + b"\n")
        while line:
            line = line[os.write(self._fd, line) :]
        if self.fsync:
            os.fsync(self._fd)
        self.done.add(key)
        self.written += 1

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._closed = True
