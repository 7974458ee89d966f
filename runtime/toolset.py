"""An environment fork as a pydantic-ai toolset, for apps that bring their own `Agent`.

Arguments are validated by our tools, not by pydantic-ai, so errors reach the model as the
same observation text our own session loop produces (and never as a run-ending retry budget).
"""

from __future__ import annotations

from typing import Any

from pydantic_ai import RunContext
from pydantic_ai.toolsets import AbstractToolset
from pydantic_ai.toolsets.abstract import ToolsetTool
from pydantic_core import SchemaValidator, core_schema

from .fork import Fork

_PASS_THROUGH = SchemaValidator(core_schema.dict_schema())


class EnvironmentToolset(AbstractToolset[Any]):
    """Exposes a fork's tools: `Agent(model, toolsets=[EnvironmentToolset(fork)])`."""

    def __init__(self, fork: Fork) -> None:
        self.fork = fork
        self.observations: list[tuple[str, str, str | None]] = []  # (tool, content, error kind)

    @property
    def id(self) -> str:
        return f"agentscaler:{self.fork.env.name}"

    async def get_tools(self, ctx: RunContext[Any]) -> dict[str, ToolsetTool[Any]]:
        return {
            d.name: ToolsetTool(
                toolset=self, tool_def=d, max_retries=0, args_validator=_PASS_THROUGH
            )
            for d in self.fork.env.tool_definitions
        }

    async def call_tool(
        self, name: str, tool_args: dict[str, Any], ctx: RunContext[Any], tool: ToolsetTool[Any]
    ) -> str:
        obs = await self.fork.call(name, tool_args)
        self.observations.append((name, obs.content, obs.error))
        return obs.content
