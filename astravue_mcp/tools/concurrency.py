"""Fan-out: one piece of work per item, at most ``max_concurrency`` at a time, with progress."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import anyio
from mcp.server.mcpserver import Context
from pydantic import ValidationError

from astravue_mcp.api.limits import current_call
from astravue_mcp.tools.registry import describe
from astravue_mcp.tools.request import api

Item = TypeVar("Item")
R = TypeVar("R")


async def fan_out(
    ctx: Context,
    items: Sequence[Item],
    work: Callable[[Item], Awaitable[R]],
    progress: Callable[[Item, R], str] | None = None,
) -> list[R]:
    """``work`` on every item, at most ``max_concurrency`` at once; results in item order.

    ``work`` must report its own failures in its result: one item's error must not cancel the rest.
    Progress goes out under a lock so the counter the client sees only ever increases.
    """
    limiter = anyio.CapacityLimiter(api(ctx).settings.max_concurrency)
    lock = anyio.Lock()
    results: list[Any] = [None] * len(items)
    done = 0

    async def one(index: int, item: Item) -> None:
        nonlocal done
        async with limiter:
            results[index] = await work(item)
        if progress is not None:
            async with lock:
                done += 1
                scope = current_call()
                if scope is None:
                    await ctx.report_progress(done, len(items), progress(item, results[index]))
                else:
                    await scope.progress(progress(item, results[index]), done, len(items))

    async with anyio.create_task_group() as group:
        for index, item in enumerate(items):
            group.start_soon(one, index, item)
    return results


def failure(exc: Exception) -> str:
    """One item's failure as the line reported for it."""
    return describe(exc) if isinstance(exc, ValidationError) else str(exc)
