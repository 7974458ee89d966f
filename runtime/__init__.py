"""agentscaler.runtime: the embeddable core (environments, tools, sessions, scheduler).

Everything an embedding app needs is re-exported here; the modules behind it are private.
`tests/test_public_api.py` pins this list.
"""

from .counters import LiveCounters
from .environment import Domain, Environment, Replay
from .errors import AgentScalerError, ClosedError, ToolError, TransientModelError, UserError
from .events import (
    Event,
    EventBus,
    ModelCalled,
    RunProgress,
    SessionFailed,
    SessionFinished,
    SessionStarted,
    ToolCalled,
)
from .fork import Fork
from .gold import with_gold_state
from .json_arguments import JsonSchemaArguments
from .models import (
    ModelFactory,
    Replicas,
    as_factory,
    gold_agent,
    load_balanced,
    openai_compatible,
    scripted_user,
)
from .offline import STOP_SIGNAL, ErrorInjection, GoldAgent, ScriptedUser
from .retry import RetryPolicy
from .scheduler import RunSummary, Scheduler, SchedulerConfig
from .session import Session, SessionLimits
from .sink import TrajectorySink
from .sql import Database, FileDatabase, MemoryDatabase, Statement
from .task import EnvAssertion, EnvCall, GoldCall, Task, assign_split, load_tasks, with_gold_hash
from .tools import Observation, Tool, ToolErrorKind, ToolKind, tool
from .toolset import EnvironmentToolset
from .trajectory import (
    AssertionRecord,
    ChatMessage,
    TerminationReason,
    ToolCallRecord,
    Trajectory,
)

__all__ = [
    "STOP_SIGNAL",
    "AgentScalerError",
    "AssertionRecord",
    "ChatMessage",
    "ClosedError",
    "Database",
    "Domain",
    "EnvAssertion",
    "EnvCall",
    "Environment",
    "EnvironmentToolset",
    "ErrorInjection",
    "Event",
    "EventBus",
    "FileDatabase",
    "Fork",
    "GoldAgent",
    "GoldCall",
    "JsonSchemaArguments",
    "LiveCounters",
    "MemoryDatabase",
    "ModelCalled",
    "ModelFactory",
    "Observation",
    "Replay",
    "Replicas",
    "RetryPolicy",
    "RunProgress",
    "RunSummary",
    "Scheduler",
    "SchedulerConfig",
    "ScriptedUser",
    "Session",
    "SessionFailed",
    "SessionFinished",
    "SessionLimits",
    "SessionStarted",
    "Statement",
    "Task",
    "TerminationReason",
    "Tool",
    "ToolCallRecord",
    "ToolCalled",
    "ToolError",
    "ToolErrorKind",
    "ToolKind",
    "Trajectory",
    "TrajectorySink",
    "TransientModelError",
    "UserError",
    "as_factory",
    "assign_split",
    "gold_agent",
    "load_balanced",
    "load_tasks",
    "openai_compatible",
    "scripted_user",
    "tool",
    "with_gold_hash",
    "with_gold_state",
]
