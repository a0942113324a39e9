"""The embedded Astravue sandbox: the documented API contract, in memory, with seeded demo data.

Importing this package is cheap; Starlette, uvicorn and the store load on first use of
:func:`create_app`, :class:`SandboxServer` or :func:`run_sandbox`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from astravue_mcp.sandbox.app import create_app
    from astravue_mcp.sandbox.server import SandboxServer, run_sandbox

__all__ = ["SandboxServer", "create_app", "run_sandbox"]

_HOMES = {
    "create_app": "astravue_mcp.sandbox.app",
    "SandboxServer": "astravue_mcp.sandbox.server",
    "run_sandbox": "astravue_mcp.sandbox.server",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
