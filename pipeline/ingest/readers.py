"""One reader per tool-spec format, in a registry users extend without touching ours.

A reader turns one parsed record into raw tools (name, description, parameters, returns as the
source spells them); normalization happens afterwards, once, for every format. Formats are
detected from a file's first record, or named by the user. Third-party readers register with
`register_reader` or through the `agentscaler.readers` entry-point group (a `ReaderSpec`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import orjson

from agentscaler.runtime import UserError


@dataclass(frozen=True, slots=True)
class RawTool:
    """A tool as its source spells it; `parameters` None means "no parameters given"."""

    name: Any
    description: Any
    parameters: Any
    returns: Any
    record: str  # where in the file: "line 12", "#3", "#3/api 2"


@dataclass(frozen=True, slots=True)
class RawReject:
    record: str
    reason: str
    detail: str


Reader = Callable[[Any, str], Iterator[RawTool | RawReject]]


@dataclass(frozen=True, slots=True)
class ReaderSpec:
    name: str
    detect: Callable[[Any], bool]  # given the file's first record
    read: Reader  # given one record and its id


_REGISTRY: dict[str, ReaderSpec] = {}
_PLUGINS_LOADED = False
_RUNTIME: set[str] = set()  # registered by calls in this process, not by import or entry point


def register_reader(name: str, detect: Callable[[Any], bool], read: Reader) -> None:
    """Add a format (checked before the built-in ones, so a user's reader can take over)."""
    _register(ReaderSpec(name, detect, read))
    _RUNTIME.add(name)


def runtime_readers() -> list[str]:
    """Formats registered by calls in this process: a process that does not fork from this one
    (a forkserver's worker) would not know them."""
    return sorted(_RUNTIME)


def _register(spec: ReaderSpec) -> None:
    _REGISTRY.pop(spec.name, None)
    items = list(_REGISTRY.items())
    _REGISTRY.clear()
    _REGISTRY.update({spec.name: spec, **dict(items)})


def registered_formats() -> list[str]:
    _load_plugins()
    return list(_REGISTRY)


def reader(name: str) -> ReaderSpec:
    _load_plugins()
    if name not in _REGISTRY:
        raise UserError(f"unknown tool-spec format {name!r}; known: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def detect_format(first_record: Any) -> str | None:
    """The first registered format whose detector accepts this record, if any."""
    _load_plugins()
    for spec in _REGISTRY.values():
        try:
            if spec.detect(first_record):
                return spec.name
        except (AttributeError, KeyError, TypeError, ValueError):
            continue
    return None


def _load_plugins() -> None:
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    for ep in entry_points(group="agentscaler.readers"):
        spec = ep.load()
        _register(ReaderSpec(spec.name, spec.detect, spec.read))


def _builtin(name: str, detect: Callable[[Any], bool]) -> Callable[[Reader], Reader]:
    def wrap(fn: Reader) -> Reader:
        _REGISTRY[name] = ReaderSpec(name, detect, fn)
        return fn

    return wrap


def _is_dict(x: Any) -> bool:
    return isinstance(x, dict)


# --- OpenAI tools (tau-bench *_tools.json) and bare function docs (BFCL multi-turn docs) -----


def _is_function(r: Any) -> bool:
    """`{"type": "function", "function": {...}}`, or a bare `{name, description, parameters}`."""
    if not _is_dict(r):
        return False
    if r.get("type") == "function" and _is_dict(r.get("function")):
        return True
    return {"name", "description", "parameters"} <= r.keys()


@_builtin("openai_function", _is_function)
def read_openai_function(record: Any, rid: str) -> Iterator[RawTool | RawReject]:
    fn = record.get("function", record) if record.get("type") == "function" else record
    yield RawTool(
        fn.get("name"), fn.get("description", ""), fn.get("parameters"), fn.get("response"), rid
    )


# --- tau2-bench tools_openai_schemas.json: {domain: {toolkit: [{schema, returns_schema}]}} ---


def _is_tau2(r: Any) -> bool:
    toolkits = next(iter(r.values()))
    entries = next(iter(toolkits.values()))
    return isinstance(entries, list) and "schema" in entries[0]


@_builtin("tau2_schemas", _is_tau2)
def read_tau2(record: Any, rid: str) -> Iterator[RawTool | RawReject]:
    for domain, toolkits in record.items():
        for toolkit, entries in toolkits.items():
            for i, entry in enumerate(entries):
                fn = entry.get("schema", {}).get("function", {})
                where = f"{domain}/{toolkit.rsplit('.', 1)[-1]}#{i}"
                yield RawTool(
                    fn.get("name"),
                    fn.get("description", ""),
                    fn.get("parameters"),
                    entry.get("returns_schema"),
                    where,
                )


# --- BFCL / ACEBench question records: {id, question, function: [...]} ----------------------


@_builtin("function_list", lambda r: _is_dict(r) and isinstance(r.get("function"), list))
def read_function_list(record: Any, rid: str) -> Iterator[RawTool | RawReject]:
    for j, fn in enumerate(record["function"]):
        if not _is_dict(fn):
            yield RawReject(
                f"{rid} fn {j}", "not_a_function", f"expected an object, got {fn!r:.60}"
            )
            continue
        yield RawTool(
            fn.get("name"),
            fn.get("description", ""),
            fn.get("parameters"),
            fn.get("response"),
            f"{rid} fn {j}",
        )


# --- StableToolBench (RapidAPI): {api_list: [{tool_name, api_name, required_parameters...}]} --


def _rapid_param(p: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": p.get("type") or "string",
        "description": p.get("description", ""),
    }
    if p.get("default") not in (None, ""):
        out["default"] = p["default"]
    return out


def _template_schema(value: Any) -> dict[str, Any]:
    """RapidAPI's example response ({"id": "str", "tags": [...]}) as a JSON Schema."""
    if isinstance(value, dict):
        props = {k: _template_schema(v) for k, v in value.items() if k != "_list_length"}
        return {"type": "object", "properties": props}
    if isinstance(value, list):
        return {"type": "array", "items": _template_schema(value[0]) if value else {}}
    kind = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}.get(str(value))
    return {"type": kind} if kind else {}


@_builtin("stabletoolbench", lambda r: _is_dict(r) and isinstance(r.get("api_list"), list))
def read_stabletoolbench(record: Any, rid: str) -> Iterator[RawTool | RawReject]:
    for j, api in enumerate(record["api_list"]):
        req = api.get("required_parameters") or []
        opt = api.get("optional_parameters") or []
        params = {
            "type": "object",
            "properties": {p.get("name"): _rapid_param(p) for p in [*req, *opt]},
            "required": [p.get("name") for p in req],
        }
        name = f"{api.get('tool_name', '')}_{api.get('api_name', '')}".strip("_")
        description = api.get("api_description") or f"{api.get('tool_name')}: {api.get('api_name')}"
        returns = api.get("template_response")
        yield RawTool(
            name or None,
            description,
            params,
            _template_schema(returns) if returns is not None else None,
            f"{rid}/api {j}",
        )


# --- Seal-Tools: {api_name, api_description, parameters: {p: {type, description}}, required} --


@_builtin("seal_tools", lambda r: _is_dict(r) and "api_name" in r and "api_description" in r)
def read_seal_tools(record: Any, rid: str) -> Iterator[RawTool | RawReject]:
    params = {
        "type": "object",
        "properties": record.get("parameters") or {},
        "required": record.get("required") or [],
    }
    responses = record.get("responses")
    returns = (
        {"type": "object", "properties": responses}
        if isinstance(responses, dict) and responses
        else None
    )
    yield RawTool(record.get("api_name"), record.get("api_description", ""), params, returns, rid)


# --- API-Bank: {class_name, description, input_parameters, output_parameters} ---------------


@_builtin("api_bank", lambda r: _is_dict(r) and "class_name" in r and "input_parameters" in r)
def read_api_bank(record: Any, rid: str) -> Iterator[RawTool | RawReject]:
    inputs = record.get("input_parameters") or {}
    params = {"type": "object", "properties": inputs, "required": list(inputs)}
    outputs = record.get("output_parameters") or {}
    returns = {"type": "object", "properties": outputs} if outputs else None
    yield RawTool(record.get("class_name"), record.get("description", ""), params, returns, rid)


# --- ToolAlpaca: {Name, Documentation: "<OpenAPI 3 JSON>"}: one tool per operation ----------

_METHODS = ("get", "post", "put", "patch", "delete")


@_builtin("toolalpaca_openapi", lambda r: _is_dict(r) and isinstance(r.get("Documentation"), str))
def read_toolalpaca(record: Any, rid: str) -> Iterator[RawTool | RawReject]:
    try:
        doc = orjson.loads(record["Documentation"])
    except orjson.JSONDecodeError as exc:
        yield RawReject(rid, "invalid_json", f"Documentation is not JSON: {exc}")
        return
    for path, ops in (doc.get("paths") or {}).items():
        for method, op in ops.items():
            if method not in _METHODS or not _is_dict(op):
                continue
            props: dict[str, Any] = {}
            required: list[str] = []
            for p in op.get("parameters") or []:
                if not _is_dict(p) or "name" not in p:
                    continue
                props[p["name"]] = {
                    **(p.get("schema") or {"type": "string"}),
                    "description": p.get("description", ""),
                }
                if p.get("required"):
                    required.append(p["name"])
            body = (op.get("requestBody") or {}).get("content", {}).get("application/json", {})
            body_schema = body.get("schema") or {}
            for name, sub in (body_schema.get("properties") or {}).items():
                props[name] = sub
            required += [r for r in body_schema.get("required") or [] if isinstance(r, str)]
            ok = (op.get("responses") or {}).get("200", {})
            returns = ok.get("content", {}).get("application/json", {}).get("schema")
            yield RawTool(
                op.get("operationId") or f"{record.get('Name', '')}_{method}_{path}",
                op.get("summary") or op.get("description") or f"{method.upper()} {path}",
                {"type": "object", "properties": props, "required": required},
                returns,
                f"{rid} {method.upper()} {path}",
            )


# --- Gorilla API Zoo and hub APIs: {api_name, api_call, api_arguments, functionality} --------

_ARG = re.compile(
    r"\s*(\[(?P<flag>[A-Z]+)\])?\s*(?P<type>[A-Za-z][\w\[\]<>() ]*?)\s*:\s*(?P<desc>.*)", re.S
)


@_builtin("gorilla_api", lambda r: _is_dict(r) and "api_call" in r and "api_name" in r)
def read_gorilla(record: Any, rid: str) -> Iterator[RawTool | RawReject]:
    args = record.get("api_arguments")
    props: dict[str, Any] = {}
    required: list[str] = []
    if isinstance(args, dict):
        for name, spec in args.items():
            m = _ARG.fullmatch(str(spec)) if isinstance(spec, str) else None
            if m and m.group("type").lower() in {
                "string",
                "integer",
                "boolean",
                "array",
                "number",
                "object",
            }:
                props[name] = {"type": m.group("type"), "description": m.group("desc").strip()}
                if m.group("flag") == "REQUIRED":
                    required.append(name)
            else:  # a default value, as hub APIs give: {"pretrained": "True"}
                props[name] = {"description": f"default: {spec}"}
    elif isinstance(args, list):
        props = {str(a): {"description": ""} for a in args if isinstance(a, str)}
    description = record.get("functionality") or record.get("description") or ""
    yield RawTool(
        record.get("api_name"),
        description,
        {"type": "object", "properties": props, "required": required},
        None,
        rid,
    )
