"""Secret scrubbing for every log line: tokens, client secrets and authorization codes never leave.

Two nets: patterns that look like credentials (bearer headers, JWTs, ``*_token=``/``code=`` query
or form fields, JSON token fields), and the literal values the auth module registers as it learns
them (so even an opaque refresh token is caught).

The literal net holds only live secrets: a token is registered with the object that holds it (a
``TokenSet``) and leaves with it, so a long-running server that refreshes every few minutes does
not scan an ever-growing list on every log line. The deployment's own secrets (the client secret, a
Redis password) are registered as permanent and always stay; other values registered without an
owner stay too, bounded to the most recent ``MAX_PINNED`` (remote mode registers several per
sign-in, which must never push a permanent one out).
"""

from __future__ import annotations

import logging
import re
import sys
import warnings
import weakref

MAX_PINNED = 64
_PERMANENT: set[str] = set()
"""Configuration secrets: few, fixed, never forgotten."""
_PINNED: dict[str, None] = {}
"""Secrets without an owner, oldest first."""
_HELD: dict[str, int] = {}
"""Secrets held by live objects: value -> how many hold it."""

_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
    re.compile(
        r"(?i)((?:access_token|refresh_token|id_token|client_secret|code_verifier|code|password|authorization)"
        r"[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]+"
    ),
]


def register_secret(value: str | None, owner: object = None, *, permanent: bool = False) -> None:
    """Remember a credential so that any later log line containing it is scrubbed.

    With an ``owner``, the value is forgotten once no owner holding it is alive any more; a
    ``permanent`` one (a setting) never is.
    """
    if not value or len(value) < 6:
        return
    if permanent:
        _PERMANENT.add(value)
        return
    if owner is None:
        _PINNED.pop(value, None)
        _PINNED[value] = None
        while len(_PINNED) > MAX_PINNED:
            del _PINNED[next(iter(_PINNED))]
        return
    _HELD[value] = _HELD.get(value, 0) + 1
    weakref.finalize(owner, _release, value)


def _release(value: str) -> None:
    left = _HELD.get(value, 0) - 1
    if left > 0:
        _HELD[value] = left
    else:
        _HELD.pop(value, None)


def registered_secrets() -> int:
    """How many literal secrets every log line is scanned for (diagnostics and tests)."""
    return len(_PERMANENT | _PINNED.keys() | _HELD.keys())


def redact(text: str) -> str:
    for secret in [*_PERMANENT, *_HELD.copy(), *_PINNED.copy()]:  # copies: a finalizer may run meanwhile
        if secret in text:
            text = text.replace(secret, "[redacted]")
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[redacted]", text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            # A traceback helps whoever reads stderr, but its messages may quote URLs with codes or
            # tokens: format it here and scrub it like the message.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        record.msg, record.args = clean, None
        return True


def setup_logging(level: str) -> None:
    """Every process's logging: redacted lines on stderr (stdout may be the MCP wire)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # Library warnings are log lines too: route them to stderr, never to stdout.
    logging.captureWarnings(True)
    warnings.simplefilter("default" if level == "DEBUG" else "ignore")
