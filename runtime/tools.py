"""Tools: a typed async function over a session's database, plus what the agent sees of it.

A tool's JSON schema is generated from its pydantic argument model, never written by hand
(STYLE.md section 3); a tool that exists only as a JSON Schema (a corpus spec) uses
`JsonSchemaArguments`, whose schema is the spec itself. Calling a tool never raises: unknown names, malformed JSON, invalid
arguments and failing implementations all come back as an `Observation` with an error kind.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, Literal, Protocol, TypeVar, get_type_hints

import orjson
from pydantic import BaseModel, ValidationError
from pydantic_ai.tools import ToolDefinition

from .errors import UserError
from .sql import Database, Statement

ToolKind = Literal["read", "write"]
ArgsT = TypeVar("ArgsT")
ArgsT_co = TypeVar("ArgsT_co", covariant=True)
ModelT = TypeVar("ModelT", bound=BaseModel)


class Arguments(Protocol[ArgsT_co]):
    """What a tool needs of its argument type: a pydantic model class is one, and so is
    `JsonSchemaArguments`. Validation failures raise pydantic's `ValidationError`."""

    def model_json_schema(self) -> dict[str, Any]: ...

    def model_validate(self, obj: Any) -> ArgsT_co: ...

    def model_validate_json(self, json_data: str | bytes) -> ArgsT_co: ...


class ToolErrorKind(StrEnum):
    """Why a call produced an error observation instead of a result."""

    UNKNOWN_TOOL = "unknown_tool"
    INVALID_JSON = "invalid_json"
    INVALID_ARGUMENTS = "invalid_arguments"
    TOOL_ERROR = "tool_error"  # the implementation raised ToolError: a domain-level refusal
    EXECUTION_ERROR = "execution_error"  # the implementation crashed: a bug, reported as data
    READ_ONLY_VIOLATION = "read_only_violation"  # a read tool changed the database
    MALFORMED_REPLY = "malformed_reply"  # the model's reply was neither text nor a tool call


@dataclass(slots=True, frozen=True)
class Observation:
    """What a tool call returns to the model, and what the trajectory records of it."""

    tool: str
    content: str
    error: ToolErrorKind | None = None
    changed: bool = False  # whether the call changed the database

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class Tool(Generic[ArgsT]):
    """A named operator over a domain database: read (query) or write (state transition)."""

    name: str
    description: str
    args: Arguments[ArgsT]
    kind: ToolKind
    fn: Callable[[Database, ArgsT], Awaitable[Any]]
    definition: ToolDefinition = field(init=False, repr=False, compare=False)
    statements: tuple[Statement, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise UserError(f"tool name {self.name!r} is not a valid identifier")
        if self.kind not in ("read", "write"):
            raise UserError(
                f"tool {self.name!r}: kind must be 'read' or 'write', got {self.kind!r}"
            )
        schema = self.args.model_json_schema()
        if isinstance(self.args, type):  # a pydantic model's generated title; a given schema stays
            schema.pop("title", None)
        definition = ToolDefinition(
            name=self.name,
            description=self.description,
            parameters_json_schema=schema,
            metadata={"kind": self.kind},
        )
        object.__setattr__(self, "definition", definition)
        object.__setattr__(self, "statements", statements_of(self.fn))

    def parse(self, arguments: str | bytes | Mapping[str, Any] | None) -> ArgsT:
        """Validate raw model arguments; raises `ValidationError` or `ValueError` (bad JSON)."""
        if arguments is None or arguments == "":
            return self.args.model_validate({})
        if isinstance(arguments, str | bytes):
            return self.args.model_validate_json(arguments)
        return self.args.model_validate(arguments)

    def openai_schema(self) -> dict[str, Any]:
        """The tool as an OpenAI chat-completions `tools` entry."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.definition.parameters_json_schema,
            },
        }


def tool(
    kind: ToolKind, *, name: str | None = None, description: str | None = None
) -> Callable[[Callable[[Database, ModelT], Awaitable[Any]]], Tool[ModelT]]:
    """Make a `Tool` from `async def fn(db, args: ArgsModel)`; the docstring is the description."""

    def wrap(fn: Callable[[Database, ModelT], Awaitable[Any]]) -> Tool[ModelT]:
        params = list(inspect.signature(fn).parameters)
        hints = get_type_hints(fn)
        if len(params) != 2 or not (
            isinstance(hints.get(params[1]), type) and issubclass(hints[params[1]], BaseModel)
        ):
            raise UserError(
                f"tool {fn.__name__!r}: expected `async def {fn.__name__}(db, args: SomeModel)`"
            )
        return Tool(
            name=name or fn.__name__,
            description=description or inspect.cleandoc(fn.__doc__ or ""),
            args=hints[params[1]],
            kind=kind,
            fn=fn,
        )

    return wrap


def statements_of(fn: Callable[..., Any]) -> tuple[Statement, ...]:
    """The Statements a tool uses: found in its globals and closure, and in the same module's
    functions it calls, so `Environment.build` can compile each one against the real schema."""
    found: dict[int, Statement] = {}
    seen: set[int] = set()
    module = getattr(fn, "__module__", None)

    def visit(f: Any) -> None:
        code = getattr(f, "__code__", None)
        if code is None or id(f) in seen:
            return
        seen.add(id(f))
        names = [f.__globals__.get(n) for n in code.co_names]
        cells = [c.cell_contents for c in (f.__closure__ or ()) if c.cell_contents is not None]
        for value in [*names, *cells]:
            held = value.values() if isinstance(value, dict) else value
            if isinstance(value, Statement):
                found[id(value)] = value
            elif isinstance(value, dict | list | tuple):  # statements kept by table, say
                found.update((id(s), s) for s in held if isinstance(s, Statement))
            elif inspect.isfunction(value) and value.__module__ == module:
                visit(value)

    visit(fn)
    return tuple(found.values())


def render_result(value: Any) -> str:
    """Observation text for a tool's return value: strings verbatim, everything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return orjson.dumps(value, default=_json_default).decode()


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "keys"):  # sqlite3.Row
        return {k: value[k] for k in value.keys()}  # noqa: SIM118 - Row has no items()
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def describe_validation_error(tool_name: str, exc: ValidationError) -> str:
    """One line per problem, naming the argument and quoting the bad value."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "<arguments>"
        value = repr(err.get("input"))
        if len(value) > 80:
            value = value[:77] + "..."
        problems.append(f"{loc}: {err['msg']} (got {value})")
    return f"Error: invalid arguments for {tool_name}: " + "; ".join(problems)
