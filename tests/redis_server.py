"""A real ``redis-server`` on 127.0.0.1 for the Redis state tests (``tasks.py test`` installs it).

Redis cannot pick its own port (``--port 0`` disables TCP), so a free port is chosen and the
start is retried if another process takes it first. Nothing is persisted; the server is stopped
when the test session ends.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from tests.oidc import free_port
from tests.support import stop


class RedisServer:
    def __init__(self, executable: str) -> None:
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (lives as long as the server)
        for _ in range(5):
            self.port = free_port()
            self.process = subprocess.Popen(
                [executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
            if self._ready():
                self.url = f"redis://127.0.0.1:{self.port}/0"
                return
            self.stop()
        raise RuntimeError(f"redis-server did not start:\n{self.log()}")

    def _ready(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return True
            except OSError:
                time.sleep(0.05)
        return False

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read()

    def close(self) -> None:
        self.stop()
        self._log.close()

    def stop(self) -> None:
        stop(self.process)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail("redis-server is not installed: `python3 tasks.py test` installs it (apt-get, as root)")
    server = RedisServer(executable)
    try:
        yield server
    finally:
        server.close()
