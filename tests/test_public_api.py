"""The runtime's public surface is small, explicit and independent of the other packages."""

from __future__ import annotations

import subprocess
import sys

import agentscaler.runtime as runtime

EXPECTED = [
    "STOP_SIGNAL", "AgentScalerError", "AssertionRecord", "ChatMessage", "ClosedError",
    "Database", "Domain", "EnvAssertion", "EnvCall", "Environment", "EnvironmentToolset", "ErrorInjection", "Event", "EventBus", "FileDatabase",
    "Fork", "GoldAgent", "GoldCall", "JsonSchemaArguments", "LiveCounters", "MemoryDatabase", "ModelCalled",
    "ModelFactory",
    "Observation", "Replay", "Replicas", "RetryPolicy", "RunProgress", "RunSummary", "Scheduler", "SchedulerConfig",
    "ScriptedUser", "Session", "SessionFailed", "SessionFinished", "SessionLimits",
    "SessionStarted", "Statement", "Task", "TerminationReason", "Tool", "ToolCallRecord",
    "ToolCalled", "ToolError", "ToolErrorKind", "ToolKind", "Trajectory", "TrajectorySink",
    "TransientModelError", "UserError", "as_factory", "assign_split", "gold_agent", "load_balanced", "load_tasks",
    "openai_compatible", "scripted_user", "tool", "with_gold_hash", "with_gold_state",
]  # fmt: skip


def test_all_is_pinned_and_importable() -> None:
    """`__all__` is exactly the pinned list, and every name in it exists."""
    assert runtime.__all__ == EXPECTED
    for name in EXPECTED:
        assert hasattr(runtime, name), name


def test_runtime_imports_no_other_package() -> None:
    """Importing the runtime loads nothing from pipeline/, trainer/, tui/ or domains/."""
    code = (
        "import sys, agentscaler.runtime, agentscaler.runtime.example\n"
        "bad = [m for m in sys.modules if m.split('.')[:2] in "
        "(['agentscaler','pipeline'],['agentscaler','trainer'],['agentscaler','tui'],"
        "['agentscaler','domains'])]\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
