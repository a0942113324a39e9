"""Argument types shared by the tool areas: each with its limits and the description a model reads."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from astravue_mcp.api.moments import in_utc


def _an_id(value: int) -> int:
    if value > MAX_ID:
        raise ValueError(f"must be at most {MAX_ID}")
    return value


MAX_ID = 2**63 - 1
"""Ids are 64-bit on the API's side; a bigger integer is no id (and a 5,000-digit one cannot even be printed)."""
# Ids are strict: `true` is not task 1, "1_0" is not 10, 1.0 is not an id (pydantic would coerce each).
Id = AfterValidator(_an_id)
SpaceId = Annotated[int, Field(ge=1, strict=True, description="Space id"), Id]
ProjectId = Annotated[int, Field(ge=1, strict=True, description="Project id"), Id]
TaskId = Annotated[int, Field(ge=1, strict=True, description="Task id"), Id]
Limit = Annotated[int, Field(ge=1, le=200, description="Max items")]
PageNo = Annotated[int, Field(ge=1, strict=True, description="Page number"), Id]
Title = Annotated[str, Field(min_length=1, max_length=500, description="Name")]
Text = Annotated[str, Field(max_length=20_000, description="Description")]
Label = Annotated[str, Field(min_length=1, max_length=100, description="Label")]

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _as_utc(value: Any) -> Any:
    """Accept a date-only value or a time without offset as UTC; keep an explicit offset."""
    if isinstance(value, str) and _DATE_ONLY.match(value.strip()):
        return datetime.combine(date.fromisoformat(value.strip()), time(), UTC)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return value
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return value


When = Annotated[
    datetime,
    BeforeValidator(_as_utc),
    AfterValidator(in_utc),  # 0001-01-01T00:00:00+14:00 does not exist in UTC: a named field error
    # Published as a plain string: a date-only value is accepted too, which "format: date-time" would forbid.
    WithJsonSchema({"type": "string", "description": "ISO 8601, UTC by default"}),
]

# ---------------------------------------------------------------- tasks
# Shared by the tasks, personal, collaboration and insights areas.
TaskTitle = Annotated[Title, Field(description="Task title")]
TaskText = Annotated[Text, Field(description="Plain text")]
Person = Annotated[int, Field(ge=1, strict=True), Id] | Annotated[str, Field(min_length=1, max_length=200)]
"""A user id, or "me", an email or a name, resolved by ``directory.resolve_owner``.

Published as a string (a model writes "4" or "Sofia" alike): a single-type schema every client
dialect accepts; a JSON number is still taken as an id."""
UserRef = Annotated[Person, WithJsonSchema({"type": "string", "description": 'User id, name, email or "me"'})]
OwnerIds = Annotated[
    list[Person],
    Field(max_length=50),
    WithJsonSchema(
        {
            "type": "array",
            "items": {"type": "string"},
            "maxItems": 50,
            "description": 'Owners: ids, names, emails, "me"',
        }
    ),
]
Mine = Annotated[bool, Field(description="Yours only")]
PercentDone = Annotated[int, Field(ge=0, le=100, description="Percent done")]
TagName = Annotated[str, Field(min_length=1, max_length=100)]
Tags = Annotated[list[TagName], Field(max_length=50, description="Tag names")]
StatusLabel = Annotated[str, Field(min_length=1, max_length=100, description="Status label")]
PriorityLabel = Annotated[str, Field(min_length=1, max_length=100, description="Priority label")]
# One parameter instead of key + direction: "-dueDate" sorts descending (fewer schema bytes, one choice).
TaskSort = Annotated[
    Literal["dueDate", "priority", "title", "updateTime", "-dueDate", "-priority", "-title", "-updateTime"],
    Field(description="Sort key; prefix - for descending"),
]
Keyword = Annotated[str, Field(min_length=1, max_length=200, description="Keywords, all in title, description or tags")]
