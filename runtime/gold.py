"""The gold final state of a task, reached the way a session reaches states.

A session runs the task's initialization functions (then a sync of the user's side from the
agent's, for dual-control domains), then each call of either side, syncing after every call that
succeeded. Replaying the gold calls in the task's own order through the same steps gives the
hashes a perfect session ends with: what the filter's state stage compares against.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

from .environment import Environment
from .errors import UserError
from .fork import Fork
from .task import Task, with_gold_hash


async def with_gold_state(
    task: Task, env: Environment, user_env: Environment | None = None
) -> Task:
    """`task` with `gold_hash` (and `gold_user_hash` with a user environment) filled in, and the
    gold calls that fail in `gold_failures`."""
    async with AsyncExitStack() as stack:
        agent = await stack.enter_async_context(env.fork())
        user = await stack.enter_async_context(user_env.fork()) if user_env else None
        sync = user_env.domain.sync_from_agent if user_env is not None else None

        def side(name: str) -> Fork:
            fork = user if name == "user" else agent
            if fork is None:
                raise UserError(f"task {task.id!r}: a user-side call needs a user environment")
            return fork

        async def synced() -> None:
            if sync is not None and user is not None:
                await sync(agent, user)

        for setup in task.initialization:
            await side(setup.side).run_function(setup.name, setup.arguments)
            await synced()
        await synced()
        failures = []
        for i, call in enumerate(task.gold_calls):
            if (await side(call.requestor).call(call.name, call.arguments)).ok:
                await synced()
            else:
                failures.append(i)
        return with_gold_hash(
            task,
            await agent.state_hash(),
            await user.state_hash() if user else None,
            tuple(failures),
        )
