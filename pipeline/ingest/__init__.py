"""Ingest: real tool specifications in a dozen formats -> one normalized ToolSpec corpus."""

from .normalize import normalize_schema
from .readers import RawTool, Reader, detect_format, register_reader, registered_formats
from .stage import IngestConfig, IngestReport, ingest
from .toolspec import Rejection, Source, ToolSpec

__all__ = [
    "IngestConfig",
    "IngestReport",
    "RawTool",
    "Reader",
    "Rejection",
    "Source",
    "ToolSpec",
    "detect_format",
    "ingest",
    "normalize_schema",
    "register_reader",
    "registered_formats",
]
