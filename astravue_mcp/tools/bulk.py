"""The bulk runner: one write per item, concurrently, each item reported on its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from mcp.server.mcpserver import Context
from pydantic import ValidationError

from astravue_mcp.errors import ApiError, AstravueError
from astravue_mcp.tools.concurrency import failure, fan_out
from astravue_mcp.tools.registry import Out

MAX_BULK = 100
"""Astravue's own limit for bulk task calls."""

Item = TypeVar("Item")


class ItemResult(Out):
    index: int
    id: int | None = None
    ok: bool
    error: str | None = None
    outcome_unknown: bool | None = None


class BulkOut(Out):
    succeeded: int
    failed: int
    results: list[ItemResult]

    def text(self) -> str:
        lines = [f"{self.succeeded} succeeded, {self.failed} failed"]
        for r in self.results:
            state = "ok" if r.ok else ("outcome unknown" if r.outcome_unknown else "error")
            ident = f" task {r.id}" if r.id is not None else ""
            lines.append(f"- #{r.index}{ident}: {state}" + (f": {r.error}" if r.error else ""))
        return "\n".join(lines)


Outcome = tuple[int | None, Exception | None]


async def run_bulk(
    ctx: Context,
    verb: str,
    items: Sequence[Item],
    ident: Callable[[Item], int | None],
    write: Callable[[Item], Awaitable[int | None]],
) -> BulkOut:
    """Apply ``write`` to every item; item by item results. Nothing is retried here: the client
    already retries what is safe, and an item whose answer was lost is reported as unknown."""

    async def one(item: Item) -> Outcome:
        try:
            return await write(item), None
        except (AstravueError, ValidationError) as exc:
            return ident(item), exc

    def progress(item: Item, outcome: Outcome) -> str:
        return f"{verb} {'ok' if outcome[1] is None else 'failed'}"

    outcomes = await fan_out(ctx, items, one, progress)
    results = [
        ItemResult(
            index=i,
            id=task_id,
            ok=exc is None,
            error=failure(exc) if exc is not None else None,
            outcome_unknown=True if isinstance(exc, ApiError) and exc.outcome_unknown else None,
        )
        for i, (task_id, exc) in enumerate(outcomes)
    ]
    out = BulkOut(succeeded=sum(r.ok for r in results), failed=sum(not r.ok for r in results), results=results)
    if out.succeeded == 0:
        # Nothing happened (or nothing is known to have happened): an error result, with every item's reason.
        raise AstravueError(f"Could not {verb} any of the {len(results)} task(s).\n" + out.text())
    return out
