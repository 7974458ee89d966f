"""Normalization: canonical JSON Schema types, consistent `required`, valid unique names.

Sources spell types many ways: BFCL's "dict"/"float"/"tuple"/"any", Java and JavaScript type
names ("HashMap", "String[]", "ArrayList<Integer>"), Python's ("str", "list(str)"),
RapidAPI's ("STRING", "DATE (YYYY-MM-DD)"). Each maps to a JSON Schema type or, for "any", to
no type constraint; anything else is an `unknown_type` rejection that names the type.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

_TYPES: dict[str, str | None] = {
    **dict.fromkeys(
        [
            "string",
            "str",
            "text",
            "char",
            "character",
            "date",
            "time",
            "datetime",
            "url",
            "email",
            "enum",
            "binary",
            "bytes",
            "file",
            "uuid",
            "path",
        ],
        "string",
    ),
    **dict.fromkeys(["integer", "int", "long", "short", "byte", "bigint"], "integer"),
    **dict.fromkeys(["number", "float", "double", "decimal", "numeric"], "number"),
    **dict.fromkeys(["boolean", "bool"], "boolean"),
    **dict.fromkeys(
        ["array", "list", "tuple", "set", "arraylist", "hashset", "linkedlist", "sequence"],
        "array",
    ),
    **dict.fromkeys(["object", "dict", "map", "hashmap", "json", "dictionary"], "object"),
    **dict.fromkeys(["any", "mixed", "null"], None),  # no constraint
}


class SchemaError(ValueError):
    """A schema that cannot be normalized; `reason` is the rejection category."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


_ARRAY_SUFFIX = re.compile(r"(.+?)\s*\[\]")  # String[]
_ARRAY_GENERIC = re.compile(
    r"(?:list|array|set|tuple|arraylist)\s*[<(\[]\s*(\w+)\s*[>)\]]", re.I
)  # List<Integer>, list(str)
_BASE = re.compile(r"[\s<(\[]")


@lru_cache(maxsize=4096)  # a corpus spells its types a few hundred ways, ~140k times
def canonical_type(raw: str) -> tuple[str | None, str | None]:
    """(JSON Schema type or None for 'any', item type for arrays); SchemaError if unknown."""
    text = raw.strip()
    if not text:
        raise SchemaError("unknown_type", "empty type name")
    array_of = _ARRAY_SUFFIX.fullmatch(text) or _ARRAY_GENERIC.fullmatch(text)
    if array_of:
        item, _ = canonical_type(array_of.group(1))
        return "array", item
    base = _BASE.split(text, maxsplit=1)[0].lower()
    if base not in _TYPES:
        raise SchemaError("unknown_type", f"unknown type {raw!r}")
    return _TYPES[base], None


def normalize_schema(schema: Any, where: str = "parameters") -> dict[str, Any]:
    """A JSON Schema with canonical types, recursively; SchemaError names the bad spot."""
    if not isinstance(schema, dict):
        raise SchemaError(
            "schema_not_object", f"{where}: expected an object, got {type(schema).__name__}"
        )
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type":
            out.update(_normalize_type(value, where))
        elif key == "properties" and isinstance(value, dict):
            out[key] = {
                str(name): normalize_schema(sub, f"{where}.{name}") for name, sub in value.items()
            }
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = normalize_schema(value, f"{where}.{key}")
        elif key in ("anyOf", "oneOf", "allOf") and isinstance(value, list):
            out[key] = [normalize_schema(v, f"{where}.{key}[{i}]") for i, v in enumerate(value)]
        elif key == "$defs" and isinstance(value, dict):
            out[key] = {str(n): normalize_schema(v, f"{where}.$defs.{n}") for n, v in value.items()}
        elif key == "required":
            continue  # made consistent below
        else:
            out[key] = value
    if "items" in out and "type" not in out:
        out["type"] = "array"
    if out.get("type") == "object" or "properties" in out:
        props = (
            out.setdefault("properties", {}) if out.get("type") == "object" else out["properties"]
        )
        required = schema.get("required")
        if isinstance(required, list):
            kept = [r for r in dict.fromkeys(required) if isinstance(r, str) and r in props]
            if kept:
                out["required"] = kept
    return out


def _normalize_type(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, list):  # ["string", "null"]
        types = [t for t in (_normalize_type(v, where).get("type") for v in value) if t]
        return {"type": types} if len(types) > 1 else ({"type": types[0]} if types else {})
    if not isinstance(value, str):
        raise SchemaError("unknown_type", f"{where}: type {value!r} is not a string")
    try:
        kind, item = canonical_type(value)
    except SchemaError as exc:
        raise SchemaError(exc.reason, f"{where}: {exc}") from None
    out: dict[str, Any] = {} if kind is None else {"type": kind}
    if item is not None:
        out["items"] = {"type": item}
    return out


def identifier(name: str) -> str:
    """A valid Python/OpenAI function identifier for any source name."""
    text = re.sub(r"[^0-9A-Za-z_]+", "_", name.strip()).strip("_")
    text = re.sub(r"_+", "_", text)
    if not text:
        return "tool"
    return f"t_{text}" if text[0].isdigit() else text
