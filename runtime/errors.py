"""Errors, split by who must act (see STYLE.md section 4).

`UserError` is the embedding developer's mistake and stops the program with a message that names
the bad value. Everything an agent or a model does wrong is *data*: it becomes a tool error
observation or a termination reason in the trajectory, never an exception that kills a run.
"""

from __future__ import annotations


class AgentScalerError(Exception):
    """Base class of every error this package raises."""


class UserError(AgentScalerError):
    """A developer's mistake: bad configuration, a malformed domain, misuse of an API."""


class ClosedError(UserError):
    """An environment, sink or scheduler was used after it was closed (or before it was opened)."""


class ToolError(AgentScalerError):
    """Raised by a tool implementation for a domain-level failure the agent must see.

    The message is the observation text, verbatim (e.g. ``"Error: order not found"``); the write
    the tool attempted is rolled back.
    """


class TransientModelError(AgentScalerError):
    """A model call failed in a way that is worth retrying (rate limit, 5xx, dropped connection)."""
