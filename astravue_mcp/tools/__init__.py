"""Tools by API area: the area modules, the toolsets they are listed under, and their shared machinery.

Importing this package is cheap and imports no area: ``registry.load_specs`` imports the modules
named in :data:`AREAS` when every tool is needed (the catalogue, the resources' text mirrors).
Every other module here is shared machinery (arguments, outputs, the scan engine, ...) that areas
import, never an area itself.
"""

AREAS = (
    "spaces",
    "projects",
    "tasks",
    "personal",
    "collaboration",
    "timers",
    "notifications",
    "insights",
    "views",
    "people",
)
"""The modules under ``astravue_mcp.tools`` that declare tools: adding an area is adding its name here."""

TOOLSETS: dict[str, str] = {
    "spaces": "spaces: list, read, create, change and delete spaces",
    "projects": "projects inside spaces",
    "tasks": "project tasks: list with filters, read, create, change, delete",
    "personal": "the caller's personal tasks",
    "collaboration": "subtasks, checklists and comments",
    "time": "timers, time entries and timesheets",
    "notifications": "notifications and mentions",
    "insights": "cross-project search, overdue and scheduled tasks, counts, bulk changes",
    "views": "interactive views (MCP Apps): task board, my tasks, project overview",
}
DEFAULT_TOOLSETS = tuple(TOOLSETS)
