"""What τ-bench's domains share in their tools: the tool list from `get_info()` schemas, τ-bench's
way of invoking a tool, and the three tools that touch no data (calculate, think,
transfer_to_human_agents).

τ-bench does not validate arguments against the schema: it calls the tool's
`invoke(data, **arguments)` and reports any exception as "Error: {exception}". An agent that
misnames an argument therefore reads Python's own TypeError text, and one that passes a wrong
type reads whatever the tool's code raised. Arguments are taken unvalidated
(`JsonSchemaArguments(schema, validate=False)`) and `invoked` reproduces those texts, so that agents see here what they would see in τ-bench.
"""

from __future__ import annotations

import ast
import functools
import operator
from collections.abc import Awaitable, Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import orjson

from agentscaler.runtime import Database, JsonSchemaArguments, Tool, ToolError, UserError

Args = dict[str, Any]
Implementation = Callable[[Database, Args], Awaitable[str]]

MAX_EXPONENT = 1000
_OPERATORS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


def _evaluate(node: ast.AST) -> Any:
    """Arithmetic only: what τ-bench's character filter lets through its eval()."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            # τ-bench's eval would compute 9**9**9 for minutes, stalling every session here.
            raise ValueError(f"exponent {right} is too large")
        return _OPERATORS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.operand))
    raise TypeError(f"unsupported expression {ast.dump(node)}")


async def calculate(db: Database, args: Args) -> str:
    expression = args["expression"]
    if not all(char in "0123456789+-*/(). " for char in expression):
        raise ToolError("Error: invalid characters in expression")
    try:
        return str(round(float(_evaluate(ast.parse(expression, "<string>", "eval"))), 2))
    except Exception as exc:  # τ-bench reports eval's own message
        raise ToolError(f"Error: {exc}") from exc


async def think(db: Database, args: Args) -> str:
    return ""


async def transfer_to_human_agents(db: Database, args: Args) -> str:
    return "Transfer successful"


COMMON: dict[str, Implementation] = {
    "calculate": calculate,
    "think": think,
    "transfer_to_human_agents": transfer_to_human_agents,
}


def listed(names: list[str]) -> str:
    """CPython's list of missing argument names: 'a'; 'a' and 'b'; 'a', 'b', and 'c'."""
    quoted = [f"'{n}'" for n in names]
    if len(quoted) < 3:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def invoked(
    qualname: str, parameters: list[str], required: list[str], fn: Implementation
) -> Implementation:
    """`fn` called the way τ-bench (and τ²-bench) call a tool method with the model's arguments
    as keyword arguments: Python's TypeError text for an unknown or missing argument (naming the
    method as `qualname`, e.g. "GetUserDetails.invoke()"), "Error: {exception}" for a failure."""

    @functools.wraps(fn)  # keeps the module: the build finds the tool's SQL through it
    async def call(db: Database, args: Args) -> str:
        unexpected = next((k for k in args if k not in parameters), None)
        if unexpected is not None:
            raise ToolError(f"Error: {qualname} got an unexpected keyword argument '{unexpected}'")
        missing = [p for p in required if p not in args]
        if missing:
            plural = "s" if len(missing) > 1 else ""
            raise ToolError(
                f"Error: {qualname} missing {len(missing)} required positional "
                f"argument{plural}: {listed(missing)}"
            )
        try:
            return await fn(db, args)
        except ToolError:
            raise
        except Exception as exc:  # what τ-bench's environment does with any exception
            raise ToolError(f"Error: {exc}") from exc

    return call


def _qualname(name: str) -> str:
    """τ-bench's tool class method: get_user_details -> GetUserDetails.invoke()."""
    return "".join(w.capitalize() for w in name.split("_")) + ".invoke()"


def unknown_action(name: str) -> str:
    """τ-bench's observation for a tool it does not have."""
    return f"Unknown action {name}"


def load_tools(
    schemas: Path, implementations: Mapping[str, Implementation], writes: Collection[str]
) -> list[Tool[Args]]:
    """τ-bench's tools, in its order, each with its own name, description and JSON schema."""
    found = {**COMMON, **implementations}
    tools = []
    for spec in orjson.loads(schemas.read_bytes()):
        name, parameters = spec["function"]["name"], spec["function"]["parameters"]
        params = list(parameters.get("properties", {}))  # τ-bench's invoke() has no defaults
        if name not in found:
            raise UserError(f"{schemas}: tool {name!r} has no implementation")
        tools.append(
            Tool(
                name=name,
                description=spec["function"]["description"],
                args=JsonSchemaArguments(parameters, validate=False),
                kind="write" if name in writes else "read",
                fn=invoked(_qualname(name), params, params, found[name]),
            )
        )
    return tools
