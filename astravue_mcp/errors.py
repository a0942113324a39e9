"""The failures a person or a model may see. Each message says what failed, why, and what to do."""

from __future__ import annotations

from dataclasses import dataclass, field


class AstravueError(Exception):
    """Base of every anticipated failure; ``str()`` is the message shown to the model."""


class NotFound(AstravueError):
    """What was asked for does not exist, or this login cannot see it."""


class InvalidArguments(AstravueError):
    """Arguments valid one by one but not together (checked before any API call)."""


class NotConfirmed(AstravueError):
    """The person declined a delete or bulk change when asked."""


class UnexpectedAnswer(AstravueError):
    """Astravue answered successfully but not in the shape the wire models describe."""


class AuthError(AstravueError):
    """No usable login: the message tells the person which command fixes it.

    ``caveat`` must reach the person even when a sign-in offer replaces the message: an update or
    delete sent before the login failed may have been applied.
    """

    def __init__(self, message: str, caveat: str = "") -> None:
        super().__init__(f"{message} {caveat}" if caveat else message)
        self.caveat = caveat


LOGIN_HINT = 'Run "astravue-mcp login" in a terminal, then call the tool again (no restart needed).'


@dataclass
class ApiError(AstravueError):
    """An Astravue API call failed. ``message`` is already written for a person."""

    message: str
    status: int | None = None
    operation: str = ""
    field_errors: list[tuple[str, str]] = field(default_factory=list)
    outcome_unknown: bool = False
    retry_after: float | None = None
    api_message: str = ""
    """Astravue's own words, for tools that rephrase the failure."""

    def __str__(self) -> str:
        return self.message
