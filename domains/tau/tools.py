"""What τ-bench's domains share in their tools: the tool list from `get_info()` schemas, and
the three tools that touch no data (calculate, think, transfer_to_human_agents)."""

from __future__ import annotations

import ast
import operator
from collections.abc import Awaitable, Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import orjson

from agentscaler.runtime import Database, JsonSchemaArguments, Tool, ToolError

Args = dict[str, Any]
Implementation = Callable[[Database, Args], Awaitable[str]]

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
        return _OPERATORS[type(node.op)](_evaluate(node.left), _evaluate(node.right))
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


def load_tools(
    schemas: Path, implementations: Mapping[str, Implementation], writes: Collection[str]
) -> list[Tool[Args]]:
    """τ-bench's tools, in its order, each with its own name, description and JSON schema."""
    found = {**COMMON, **implementations}
    return [
        Tool(
            name=spec["function"]["name"],
            description=spec["function"]["description"],
            args=JsonSchemaArguments(spec["function"]["parameters"]),
            kind="write" if spec["function"]["name"] in writes else "read",
            fn=found[spec["function"]["name"]],
        )
        for spec in orjson.loads(schemas.read_bytes())
    ]
