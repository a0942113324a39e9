#!/usr/bin/env python3
"""Developer entry point that needs nothing but Python 3.11+.

    python3 tasks.py demo     # venv + install, then the server on the embedded sandbox, answering a call
    python3 tasks.py test     # venv + install (Python, the test suite's Node packages, Debian's headless
                              # Chromium and redis-server when missing), then every test
    python3 tasks.py bench    # the benchmarks under bench/, results in bench/results/
    python3 tasks.py release  # the release check: versions agree, wheel + sdist + .mcpb built into dist/,
                              # the wheel installed into a fresh venv and run on the sandbox
                              # (--tag vX.Y.Z also checks the tag; --outdir DIR instead of dist/)

Each command creates ``.venv`` on first use and re-installs only when pyproject.toml changed
(the demo installs the package alone; the other commands add the development tools).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
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


def ensure_venv(dev: bool = True) -> None:
    """An editable install in .venv; ``dev`` adds the test and build tools (the demo needs none)."""
    if sys.version_info < (3, 11):  # noqa: UP036 (this script may run under an older python3)
        sys.exit(f"astravue-mcp needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    stamp = VENV / ".installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    installed = stamp.read_text().split() if stamp.exists() else []  # digest, then "plain" without the dev tools
    if installed[:1] == [digest] and (not dev or "plain" not in installed):
        return
    what, takes = ("astravue-mcp and its test tools", "1-2 minutes") if dev else ("astravue-mcp", "about a minute")
    print(f"Installing {what} into .venv (once; {takes} on a fresh machine)...", file=sys.stderr)
    started = time.monotonic()
    if not PY.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    _run(PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", ".[dev]" if dev else ".")
    stamp.write_text(digest if dev else f"{digest} plain")
    print(f"Installed in {time.monotonic() - started:.0f} s.", file=sys.stderr, flush=True)


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


# ---------------------------------------------------------------- release
VERSIONED = {
    "pyproject.toml (astravue_mcp.__version__)": ("astravue_mcp/__init__.py", None),
    "server.json": ("server.json", ["version"]),
    "server.json packages[0]": ("server.json", ["packages", 0, "version"]),
    "manifest.json (MCP Bundle)": ("manifest.json", ["version"]),
    "Claude Code plugin": (".claude-plugin/plugin.json", ["version"]),
    "Claude Code marketplace entry": (".claude-plugin/marketplace.json", ["plugins", 0, "version"]),
    "Cursor plugin": (".cursor-plugin/plugin.json", ["version"]),
    "Gemini CLI extension": ("gemini-extension.json", ["version"]),
}


def versions(root: Path = ROOT) -> dict[str, str]:
    """The version every manifest carries, by manifest."""
    found = {}
    for label, (path, keys) in VERSIONED.items():
        text = (root / path).read_text(encoding="utf-8")
        if keys is None:
            match = re.search(r'^__version__ = "([^"]+)"', text, re.M)
            found[label] = match.group(1) if match else "?"
            continue
        value = json.loads(text)
        for key in keys:
            value = value[key]
        found[label] = str(value)
    return found


def version_problems(root: Path = ROOT, tag: str | None = None) -> list[str]:
    """Why a release of this tree must be refused (empty when every manifest agrees)."""
    found = versions(root)
    version = found["pyproject.toml (astravue_mcp.__version__)"]
    problems = [f"{label} says {v}, the package {version}" for label, v in found.items() if v != version]
    if f"## [{version}] - " not in (root / "CHANGELOG.md").read_text(encoding="utf-8"):
        problems.append(f"CHANGELOG.md has no '## [{version}] - <date>' section")
    if tag is not None and tag != f"v{version}":
        problems.append(f"the tag {tag} is not v{version}")
    return problems


def smoke_test(wheel: Path, workdir: Path, version: str) -> None:
    """Install the wheel alone into a fresh venv and run it on the embedded sandbox, outside the checkout."""
    env_dir = workdir / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASTRAVUE_", "VIRTUAL_ENV", "PYTHON"))}
    _run(bin_dir / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel, cwd=workdir)
    exe = str(bin_dir / "astravue-mcp")

    def run(*args: str) -> str:
        done = subprocess.run([exe, *args], capture_output=True, text=True, env=env, cwd=workdir, timeout=120)
        if done.returncode != 0:
            sys.exit(f"release: `astravue-mcp {' '.join(args)}` from the wheel failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    if run("--version").strip() != f"astravue-mcp {version}":
        sys.exit(f"release: the installed wheel is not version {version}")
    spaces = json.loads(run("call", "astravue_list_spaces", "--sandbox", "--args", '{"limit": 1}'))
    if not spaces.get("items"):
        sys.exit(f"release: the installed wheel listed no spaces on the sandbox: {spaces}")
    run("doctor", "--sandbox")
    print(f"release: the wheel installs into a fresh venv and runs on the sandbox (version {version})", flush=True)


def release(argv: list[str]) -> int:
    import argparse

    options = argparse.ArgumentParser(prog="tasks.py release", description="the release check (see the docstring)")
    options.add_argument("--tag", help="the git tag being released; must be v<version>")
    options.add_argument("--outdir", type=Path, default=ROOT / "dist", help="where to write the artefacts")
    args = options.parse_args(argv)
    problems = version_problems(tag=args.tag)
    if problems:
        print("release refused: the versions do not agree:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    version = versions()["pyproject.toml (astravue_mcp.__version__)"]
    print(f"release: every manifest says {version}", flush=True)
    ensure_venv()
    ensure_node()  # the .mcpb packer
    outdir = args.outdir.resolve()
    for old in outdir.glob(f"astravue*{version}*") if outdir.exists() else []:
        old.unlink()
    _run(PY, "-m", "build", "--quiet", "--outdir", outdir, ROOT)
    _run(PY, ROOT / "scripts" / "build_mcpb.py", "--output", outdir / f"astravue-mcp-{version}.mcpb")
    (wheel,) = outdir.glob(f"astravue_mcp-{version}-*.whl")
    with tempfile.TemporaryDirectory(prefix="astravue-release-") as tmp:
        smoke_test(wheel, Path(tmp), version)
    for artefact in sorted(outdir.glob(f"astravue*{version}*")):
        digest = hashlib.sha256(artefact.read_bytes()).hexdigest()
        print(f"release: {artefact.relative_to(outdir.parent)}  sha256 {digest}", flush=True)
    return 0


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "help"
    if command == "demo":
        ensure_venv(dev=False)
        return subprocess.call([str(BIN / "astravue-mcp"), "demo", *argv[1:]])
    if command == "test":
        ensure_venv()
        ensure_node()
        ensure_browser()
        ensure_redis()
        return subprocess.call([str(PY), "-m", "pytest", *argv[1:]], cwd=ROOT)
    if command == "release":
        return release(argv[1:])
    if command == "bench":
        ensure_venv()
        return subprocess.call([str(PY), str(ROOT / "bench" / "run_all.py"), *argv[1:]], cwd=ROOT)
    print(__doc__)
    return 0 if command == "help" else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
