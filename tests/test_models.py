"""Wire models: tolerant reading by the documented names and their likely alternatives."""

from __future__ import annotations

from astravue_mcp.api import models


def test_task_reads_labels_or_objects_and_tag_objects() -> None:
    task = models.Task.model_validate(
        {
            "id": 3,
            "title": "Ship",
            "status": "Done",
            "priority": {"priorityLabel": "High"},
            "tags": [{"tagName": "release"}, "web"],
            "createdBy": {"userId": 1, "anything": True},
        }
    )
    assert (task.task_id, task.task_title, task.status.status_name, task.priority.priority_label) == (
        3,
        "Ship",
        "Done",
        "High",
    )
    assert task.tags == ["release", "web"]
    assert task.created_by == {"userId": 1, "anything": True}  # carried through unparsed


def test_searchable_text_reads_the_same_names_as_the_model() -> None:
    assert models.searchable_text({"taskTitle": "Fix login", "description": "SSO", "tags": [{"name": "auth"}]}) == (
        "Fix login SSO auth"
    )
    assert models.searchable_text({"title": "Alt name", "tags": ["x"]}) == "Alt name x"
    assert models.searchable_text(None) == ""
