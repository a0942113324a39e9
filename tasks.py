#!/usr/bin/env python3
"""Developer entry point that needs nothing but Python 3.11+.

    python3 tasks.py demo     # venv + install, then the server on the embedded sandbox, answering a call
    python3 tasks.py test     # venv + install (Python, the test suite's Node packages, Debian's headless
                              # Chromium and redis-server when missing), then every test
    python3 tasks.py bench    # the benchmarks under bench/, results in bench/results/
    python3 tasks.py surface  # after changing the package: regenerate astravue_mcp/surface.json

Each command creates ``.venv`` on first use and re-installs only when pyproject.toml changed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
NODE_DIRS = [ROOT / "tests" / "node", ROOT / "tests" / "inspector"]


def _run(*cmd: str | Path, cwd: Path = ROOT) -> None:
    print("+", " ".join(str(c) for c in cmd), file=sys.stderr, flush=True)
    subprocess.run([str(c) for c in cmd], cwd=cwd, check=True)


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 (this script may run under an older python3)
        sys.exit(f"astravue-mcp needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    if not PY.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / ".installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text() != digest:
        _run(PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", ".[dev]")
        stamp.write_text(digest)


def ensure_node() -> None:
    """Install the Node packages the tests drive: a real OpenID provider, the MCP Inspector, the MCP
    conformance suite, the bundle packer and a Node 22 binary."""
    npm = shutil.which("npm")
    for folder in NODE_DIRS:
        if not (folder / "package.json").exists():
            continue
        if npm is None:
            print(f"npm not found: tests needing {folder.name}/ will be skipped", file=sys.stderr)
            continue
        lock = folder / "package-lock.json"
        stamp = folder / "node_modules" / ".installed"
        digest = hashlib.sha256((folder / "package.json").read_bytes() + (lock.read_bytes() if lock.exists() else b""))
        if stamp.exists() and stamp.read_text() == digest.hexdigest():
            continue
        # `npm install` follows the committed lock like `npm ci` does, but tolerates an optional,
        # other-platform dependency that the registry no longer serves (vite's Windows helper), which
        # makes `npm ci` refuse the whole tree.
        _run(npm, "install", "--no-audit", "--no-fund", "--loglevel=error", cwd=folder)
        stamp.write_text(digest.hexdigest())


BROWSER_PACKAGE = "chromium-headless-shell"
BROWSER_PATHS = (Path("/usr/lib/chromium/chromium-headless-shell"), Path("/usr/bin/chromium-headless-shell"))


def ensure_debian_package(package: str, present: bool, purpose: str, without: str) -> None:
    """Install a Debian package some tests run (``apt-get update`` first), saying what and why.

    ``without`` says what happens to those tests when it cannot be installed (no apt-get, not root).
    """
    if present:
        return
    apt = shutil.which("apt-get")
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if apt is None or not is_root:
        why = "apt-get is not available" if apt is None else "installing needs root"
        print(
            f"WARNING: {package} is missing and {why}: {without}. Install it with `sudo apt-get install -y {package}`.",
            file=sys.stderr,
        )
        return
    print(f"Installing Debian's {package} for {purpose}", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        for command in ([apt, "update"], [apt, "install", "-y", "--no-install-recommends", package]):
            print("+", " ".join(command), file=sys.stderr, flush=True)
            subprocess.run(command, check=True, env=env)
    except subprocess.CalledProcessError as exc:
        print(f"WARNING: could not install {package} ({exc}): {without}.", file=sys.stderr)


def ensure_browser() -> None:
    """Debian's headless Chromium for the views' browser tests (Playwright's own download is not used)."""
    present = bool(shutil.which(BROWSER_PACKAGE)) or any(p.exists() for p in BROWSER_PATHS)
    purpose = "the views' browser tests (headless Chromium)"
    ensure_debian_package(BROWSER_PACKAGE, present, purpose, "the browser tests of the MCP Apps views will be SKIPPED")


def ensure_redis() -> None:
    """Debian's redis-server: the shared-state and two-replica tests of remote mode run it on 127.0.0.1."""
    present = bool(shutil.which("redis-server"))
    purpose = "remote mode's shared-state tests (run on 127.0.0.1)"
    ensure_debian_package("redis-server", present, purpose, "the Redis tests of remote mode will FAIL")


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "help"
    if command == "demo":
        ensure_venv()
        return subprocess.call([str(BIN / "astravue-mcp"), "demo", *argv[1:]])
    if command == "test":
        ensure_venv()
        ensure_node()
        ensure_browser()
        ensure_redis()
        return subprocess.call([str(PY), "-m", "pytest", *argv[1:]], cwd=ROOT)
    if command == "surface":
        ensure_venv()
        return subprocess.call([str(PY), "-m", "astravue_mcp.catalogue"], cwd=ROOT)
    if command == "bench":
        ensure_venv()
        return subprocess.call([str(PY), str(ROOT / "bench" / "run_all.py"), *argv[1:]], cwd=ROOT)
    print(__doc__)
    return 0 if command == "help" else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
