"""Every Astravue REST endpoint this project uses: method and path, in one table.

Most paths in the public reference are reconstructed guesses (see docs/astravue-api-notes.md;
``confidence`` repeats the reference's ``x-confidence``). When a real account shows a path is
wrong, fix the one line here: the API client, the embedded sandbox and ``astravue-mcp doctor``
all read this table. Keys are the reference's ``operationId``s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Method = Literal["GET", "POST", "PUT", "DELETE"]


@dataclass(frozen=True)
class Endpoint:
    method: Method
    path: str
    kind: str
    """What the path's last id names, for messages such as 'Task 7 was not found'."""
    confidence: Literal["seen", "high", "medium", "low"] = "seen"

    def url(self, **ids: int) -> str:
        return self.path.format(**ids)


_P = "/v1/spaces/{spaceId}/projects/{projectId}"
_TT = "/v1/time-track"

ENDPOINTS: dict[str, Endpoint] = {
    # Spaces
    "list_spaces": Endpoint("GET", "/v1/spaces", "space"),
    "create_space": Endpoint("POST", "/v1/spaces", "space"),
    "get_space": Endpoint("GET", "/v1/spaces/{spaceId}", "space", "high"),
    "update_space": Endpoint("PUT", "/v1/spaces/{spaceId}", "space", "high"),
    "delete_space": Endpoint("DELETE", "/v1/spaces/{spaceId}", "space", "high"),
    # Projects
    "list_projects": Endpoint("GET", "/v1/spaces/{spaceId}/projects", "space", "high"),
    "create_project": Endpoint("POST", "/v1/spaces/{spaceId}/projects", "space"),
    "get_project": Endpoint("GET", _P, "project"),
    "update_project": Endpoint("PUT", _P, "project", "high"),
    "delete_project": Endpoint("DELETE", _P, "project", "high"),
    # Project tasks
    "list_project_tasks": Endpoint("GET", f"{_P}/tasks", "project"),
    "create_project_task": Endpoint("POST", f"{_P}/tasks", "project", "high"),
    "get_project_task": Endpoint("GET", f"{_P}/tasks/{{taskId}}", "task", "medium"),
    "update_project_task": Endpoint("PUT", f"{_P}/tasks/{{taskId}}", "task", "medium"),
    "delete_project_task": Endpoint("DELETE", f"{_P}/tasks/{{taskId}}", "task", "medium"),
    "list_project_task_subtasks": Endpoint("GET", f"{_P}/tasks/{{taskId}}/subtasks", "task", "low"),
    # Personal tasks
    "list_tasks": Endpoint("GET", "/v1/tasks", "task", "medium"),
    "create_task": Endpoint("POST", "/v1/tasks", "task"),
    "get_task": Endpoint("GET", "/v1/tasks/{taskId}", "task", "medium"),
    "update_task": Endpoint("PUT", "/v1/tasks/{taskId}", "task", "medium"),
    "delete_task": Endpoint("DELETE", "/v1/tasks/{taskId}", "task", "medium"),
    "list_personal_task_subtasks": Endpoint("GET", "/v1/tasks/{taskId}/subtasks", "task", "low"),
    # Comments and checklists (task ids are global, so these are not project-scoped)
    "list_task_comments": Endpoint("GET", "/v1/tasks/{taskId}/comments", "task", "low"),
    "list_task_checklists": Endpoint("GET", "/v1/tasks/{taskId}/checklists", "task", "low"),
    "list_subtask_checklists": Endpoint("GET", "/v1/tasks/{taskId}/subtasks/{subtaskId}/checklists", "subtask", "low"),
    # Time tracking
    "list_task_timers": Endpoint("GET", f"{_TT}/tasks/{{taskId}}", "task", "low"),
    "list_active_timers": Endpoint("GET", f"{_TT}/active", "timer", "low"),
    "update_timer": Endpoint("PUT", f"{_TT}/{{timerId}}", "time entry", "low"),
    "delete_timer_entry": Endpoint("DELETE", f"{_TT}/{{timerId}}", "time entry", "low"),
    "stop_timer": Endpoint("PUT", f"{_TT}/tasks/{{taskId}}/stop", "task", "low"),
    "start_personal_task_timer": Endpoint("POST", f"{_TT}/tasks/{{taskId}}/start", "task", "low"),
    "add_personal_task_time_range": Endpoint("POST", f"{_TT}/tasks/{{taskId}}/range", "task"),
    "add_personal_task_manual_time": Endpoint("POST", f"{_TT}/tasks/{{taskId}}/manual", "task", "high"),
    "start_project_task_timer": Endpoint("POST", f"{_TT}/projects/{{projectId}}/tasks/{{taskId}}/start", "task", "low"),
    "add_project_task_time_range": Endpoint("POST", f"{_TT}/projects/{{projectId}}/tasks/{{taskId}}/range", "task"),
    "add_project_task_manual_time": Endpoint("POST", f"{_TT}/projects/{{projectId}}/tasks/{{taskId}}/manual", "task"),
    "get_global_timesheet_report": Endpoint("GET", f"{_TT}/timesheet", "timesheet", "low"),
    "get_project_timesheet": Endpoint("GET", f"{_TT}/projects/{{projectId}}/timesheet", "project", "low"),
    "get_project_timesheet_summary": Endpoint(
        "GET", f"{_TT}/projects/{{projectId}}/timesheet/summary", "project", "low"
    ),
    # Notifications
    "list_notifications": Endpoint("GET", "/v1/notifications", "notification", "low"),
    "mark_notifications_read": Endpoint("PUT", "/v1/notifications/read", "notification", "low"),
    "delete_notifications": Endpoint("DELETE", "/v1/notifications", "notification", "low"),
}

# Query parameter names of the list endpoints (the reference marks them as guesses too).
PAGE = "pageNumber"
PAGE_SIZE = "pageSize"
SORT_BY = "sortBy"
SORT_DIR = "sortDirection"
TASK_FILTERS = {
    "status": "status",
    "priority": "priority",
    "owner": "ownerId",
    "due_from": "dueFrom",
    "due_to": "dueTo",
}
TIMESHEET_RANGE = {"start": "startDate", "end": "endDate", "user": "userId"}
NOTIFICATION_UNREAD = "unreadOnly"
PAGES_START_AT = 0
"""Whether pageNumber counts from 0 (Spring's default, which the API's schema names suggest) or 1."""
