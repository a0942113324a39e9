"""Prompts: ready-made workflows that tell the model which tools to call and what to produce."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer


def register(server: MCPServer[Any]) -> None:
    @server.prompt(
        name="daily_standup",
        title="Daily stand-up",
        description="Summarise yesterday's progress, today's plan and blockers from Astravue.",
    )
    def daily_standup() -> str:
        return (
            "Prepare my daily stand-up from Astravue. Call astravue_list_spaces and astravue_list_projects to "
            "find my projects, then list their tasks. Report in three short sections: Done recently, Today "
            "(due today or in progress), Blockers (overdue or high priority with no progress)."
        )
