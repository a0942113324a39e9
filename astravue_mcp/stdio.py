"""stdio: every line a client sends gets an answer, as over Streamable HTTP.

The SDK's stdio transport drops a line that is not one JSON-RPC message (invalid JSON, a batch, an
integer longer than 4,300 digits, nesting deeper than its parser allows) without a word, and the
client waits for an answer forever. :func:`answering_every_line` stands in front of that transport,
which keeps serving file descriptors 0 and 1 exactly as it documents: fd 0 becomes a pipe fed with
the lines that are JSON-RPC messages, fd 1 a pipe whose lines are copied to the real stdout. A line
that is not a message is answered on the real stdout, between whole lines, with -32700 (parse
error) or -32600 (invalid request, with the request's id when it has a usable one).
"""

from __future__ import annotations

import contextlib
import io
import os
import select
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pydantic_core
from mcp_types import (
    INVALID_REQUEST,
    PARSE_ERROR,
    ErrorData,
    JSONRPCError,
    JSONRPCNotification,
    jsonrpc_message_adapter,
)
from pydantic import ValidationError

CHUNK = 65536


def answer(line: str) -> bytes | None:
    """The error response a line deserves; None for a JSON-RPC message (and for a blank line)."""
    if not line.strip():
        return None
    try:
        message = jsonrpc_message_adapter.validate_json(line, by_name=False)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        if first["type"] == "json_invalid":
            return _error(None, PARSE_ERROR, f"Parse error: {first['msg'].removeprefix('Invalid JSON: ')}")
        valid = False
    else:
        if not isinstance(message, JSONRPCNotification) or '"id"' not in line:
            return None
        valid = True  # but a request whose id is not a string or an integer (``true``) passes as a notification
    try:
        data: Any = pydantic_core.from_json(line)
    except ValueError:  # not expected: the parser accepted it a moment ago
        data = None
    if isinstance(data, list):
        return _error(None, INVALID_REQUEST, "Invalid Request: batches are not supported, send one message per line")
    if not isinstance(data, dict) or "id" not in data:
        return None if valid else _invalid(None)
    ident = data["id"]
    if isinstance(ident, bool) or not isinstance(ident, int | str):
        return _error(None, INVALID_REQUEST, "Invalid Request: the id must be a string or an integer")
    return _invalid(ident)


def _invalid(ident: int | str | None) -> bytes:
    return _error(ident, INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 request, notification or response")


def _error(ident: int | str | None, code: int, message: str) -> bytes:
    error = JSONRPCError(jsonrpc="2.0", id=ident, error=ErrorData(code=code, message=message))
    return error.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Wire:
    """The real stdout. Whole lines only, one writer at a time: the SDK's copied lines and our answers."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lock = threading.Lock()

    def send(self, data: bytes) -> None:
        with self.lock, contextlib.suppress(OSError):  # the client went away: nothing to tell it
            _write_all(self.fd, data)


def _guard_input(real_in: int, to_sdk: int, wire: _Wire) -> None:
    """Lines from the client: messages go on to the SDK, anything else is answered here."""
    # Decoded as the SDK decodes (UTF-8 with replacement, universal newlines), so a line it would
    # split or mangle is judged as it will see it.
    source = io.TextIOWrapper(os.fdopen(real_in, "rb", closefd=False), encoding="utf-8", errors="replace")
    try:
        for line in source:
            reply = answer(line)
            if reply is None:
                _write_all(to_sdk, line.encode())
            else:
                wire.send(reply)
    except OSError:
        pass  # the SDK stopped reading: it is shutting down
    finally:
        os.close(to_sdk)  # end of input reaches the SDK as it would have


def _copy_output(from_sdk: int, stop: int, wire: _Wire) -> None:
    """The SDK's lines to the real stdout; on ``stop``, what is left in the pipe, then return."""
    pending = b""
    stopping = False
    while True:
        if not stopping:
            ready, _, _ = select.select([from_sdk, stop], [], [])
            stopping = stop in ready
            if from_sdk not in ready:
                continue
        elif not select.select([from_sdk], [], [], 0)[0]:
            return  # drained (a partial line left by a crash is dropped: it is not JSON-RPC)
        chunk = os.read(from_sdk, CHUNK)
        if not chunk:
            return
        pending += chunk
        end = pending.rfind(b"\n") + 1
        if end:
            wire.send(pending[:end])
            pending = pending[end:]


def _private_copy(fd: int) -> int:
    import fcntl  # deferred: POSIX only (this module also loads on Windows)

    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)


@contextlib.contextmanager
def answering_every_line() -> Iterator[None]:
    """Serve the SDK's stdio transport through the guard while the block runs (POSIX; a no-op elsewhere)."""
    if sys.platform == "win32":  # pragma: no cover - select() does not take pipes there
        yield
        return
    real_in, real_out = _private_copy(0), _private_copy(1)
    sdk_in, to_sdk = os.pipe()
    from_sdk, sdk_out = os.pipe()
    stop_read, stop_write = os.pipe()
    os.dup2(sdk_in, 0)
    os.dup2(sdk_out, 1)
    os.close(sdk_in)
    os.close(sdk_out)
    wire = _Wire(real_out)
    threading.Thread(target=_guard_input, args=(real_in, to_sdk, wire), name="stdio-guard-in", daemon=True).start()
    output = threading.Thread(
        target=_copy_output, args=(from_sdk, stop_read, wire), name="stdio-guard-out", daemon=True
    )
    output.start()
    try:
        yield
    finally:
        # The server has returned: every line it wrote is in the pipe. Copy them, then give the
        # process its real descriptors back (the input thread may still wait on stdin: it is a daemon).
        os.write(stop_write, b"x")
        output.join(10)
        os.dup2(real_in, 0)
        os.dup2(real_out, 1)
