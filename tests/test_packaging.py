"""Packaging: the release check builds everything, the built wheel really installs and runs; server.json,
manifest.json, the plugin manifests and the docs agree.

The distributions come from one run of the release command itself (``python3 tasks.py release``,
about 35 s: version check, wheel, sdist, .mcpb, the wheel run from a fresh venv); the tests below
then look inside what it built and install the wheel once more for closer checks.

After adding or changing a tool, refresh manifest.json's tool list together with the tools/list
snapshot: ``UPDATE_SNAPSHOTS=1 python3 tasks.py test tests/test_surface.py tests/test_packaging.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

import tasks
from astravue_mcp import __version__
from astravue_mcp.config import ENV, Settings

ROOT = Path(__file__).resolve().parent.parent
SERVER_JSON = json.loads((ROOT / "server.json").read_text(encoding="utf-8"))
MANIFEST = json.loads((ROOT / "manifest.json").read_text(encoding="utf-8"))
README = (ROOT / "README.md").read_text(encoding="utf-8")
SEED = "astravue_mcp/sandbox/seed.json"
BUILD_TIMEOUT = 300
RELEASE_TIMEOUT = 600


def is_secret(env_var: str) -> bool:
    annotation = Settings.model_fields[ENV[env_var]].annotation
    return SecretStr in getattr(annotation, "__args__", (annotation,))


# ---------------------------------------------------------------- the built distributions
@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    release = [sys.executable, str(ROOT / "tasks.py"), "release", "--outdir", str(out), "--tag", f"v{__version__}"]
    done = subprocess.run(release, capture_output=True, text=True, timeout=RELEASE_TIMEOUT, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    ran = f"release: the wheel installs into a fresh venv and runs on the sandbox (version {__version__})"
    assert ran in done.stdout
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    (mcpb,) = out.glob("*.mcpb")
    assert f"{out.name}/{mcpb.name}  sha256 " in done.stdout
    return {"wheel": wheel, "sdist": sdist, "mcpb": mcpb}


def test_wheel_and_sdist_carry_the_version_and_the_seed(dists: dict[str, Path]) -> None:
    assert dists["wheel"].name == f"astravue_mcp-{__version__}-py3-none-any.whl"
    assert dists["sdist"].name == f"astravue_mcp-{__version__}.tar.gz"
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(f"astravue_mcp-{__version__}.dist-info/METADATA").decode()
    assert SEED in names and "astravue_mcp/py.typed" in names
    assert not [n for n in names if n.endswith("surface.json")], "the runtime reads no committed tool list"
    assert not [n for n in names if n.startswith("tests/")]
    assert f"Version: {__version__}" in metadata and "License-Expression: MIT" in metadata
    assert "mcp-name: io.github.astravue-mcp/astravue-mcp" in metadata  # the README is the long description
    with tarfile.open(dists["sdist"]) as sdist:
        members = sdist.getnames()
    assert f"astravue_mcp-{__version__}/{SEED}" in members
    assert f"astravue_mcp-{__version__}/LICENSE" in members


def test_the_wheel_installs_into_a_fresh_venv_and_runs(dists: dict[str, Path], tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASTRAVUE_", "VIRTUAL_ENV", "PYTHON"))}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # this install's tool cache starts empty
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, str(dists["wheel"])], check=True, env=env, timeout=BUILD_TIMEOUT)
    exe = str(bin_dir / "astravue-mcp")

    version = subprocess.run([exe, "--version"], capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert version.stdout.strip() == f"astravue-mcp {__version__}"
    call = subprocess.run(
        [exe, "call", "astravue_list_spaces", "--sandbox", "--args", '{"limit": 1}'],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,  # not the repo: the installed package, with its own seed data, must answer
    )
    assert call.returncode == 0, call.stderr
    # The first run cached the installed package's tools: later start-ups list them without building any.
    cached = [str(bin_dir / "python"), "-c", "from astravue_mcp import surface; print(len(surface.load(None) or {}))"]
    listed = subprocess.run(cached, capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    every_tool = json.loads((ROOT / "tests" / "snapshots" / "tools_list.json").read_text(encoding="utf-8"))
    assert listed.stdout.strip() == str(len(every_tool)), listed.stderr
    assert json.loads(call.stdout) == {
        "items": [
            {"id": 1, "name": "Product", "description": "Product development: apps and platform."},
        ],
        "total": 3,
        "next_page": 2,
    }


# ---------------------------------------------------------------- server.json (MCP registry)
def test_server_json_follows_the_registry_schema() -> None:
    s = SERVER_JSON
    assert s["$schema"] == "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
    assert re.fullmatch(r"[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+", s["name"]) and s["name"].startswith("io.github.")
    assert s["title"] and 1 <= len(s["description"]) <= 100
    assert s["repository"] == {"url": "https://github.com/astravue-mcp/astravue-mcp", "source": "github"}
    (package,) = s["packages"]
    assert set(package) <= {
        "registryType", "registryBaseUrl", "identifier", "version", "fileSha256", "runtimeHint", "transport",
        "runtimeArguments", "packageArguments", "environmentVariables",
    }  # fmt: skip
    assert package["registryType"] == "pypi" and package["identifier"] == "astravue-mcp"
    assert package["runtimeHint"] == "uvx" and package["transport"] == {"type": "stdio"}
    assert package["packageArguments"] == [{"type": "positional", "value": "serve", "valueHint": "command"}]


def test_versions_agree_everywhere() -> None:
    assert tasks.version_problems(tag=f"v{__version__}") == []
    assert set(tasks.versions().values()) == {__version__}
    assert SERVER_JSON["version"] == SERVER_JSON["packages"][0]["version"] == MANIFEST["version"] == __version__


def test_release_check_refuses_any_disagreement(tmp_path: Path) -> None:
    for path in {path for path, _ in tasks.VERSIONED.values()} | {"CHANGELOG.md"}:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text((ROOT / path).read_text(encoding="utf-8"), encoding="utf-8")
    extension = json.loads((tmp_path / "gemini-extension.json").read_text())
    (tmp_path / "gemini-extension.json").write_text(json.dumps({**extension, "version": "9.9.9"}))
    assert tasks.version_problems(tmp_path, tag="v0.0.1") == [
        f"Gemini CLI extension says 9.9.9, the package {__version__}",
        f"the tag v0.0.1 is not v{__version__}",
    ]
    # The real command refuses before building anything.
    done = subprocess.run(
        [sys.executable, str(ROOT / "tasks.py"), "release", "--tag", "v0.0.1", "--outdir", str(tmp_path / "dist")],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 1 and not (tmp_path / "dist").exists()
    assert done.stderr.strip().splitlines()[-1] == f"  the tag v0.0.1 is not v{__version__}"


def test_readme_carries_the_registry_ownership_marker() -> None:
    assert f"<!-- mcp-name: {SERVER_JSON['name']} -->" in README


def test_server_json_variables_are_real_documented_and_flagged_right() -> None:
    variables = {v["name"]: v for v in SERVER_JSON["packages"][0]["environmentVariables"]}
    for name, var in variables.items():
        assert name in ENV, f"{name} is not a setting"
        assert f"`{name}`" in README, f"{name} is not documented in the README"
        assert var["isSecret"] is is_secret(name), name
        assert var["description"]
    # What `serve` refuses to start without is required; every secret a user supplies is listed.
    assert {n for n, v in variables.items() if v["isRequired"]} == {
        "ASTRAVUE_CLIENT_ID",
        "ASTRAVUE_CLIENT_SECRET",
        "ASTRAVUE_ORG_ID",
    }
    # The HTTP and remote-mode secrets belong to a deployment, not to the stdio package a registry installs.
    deployment = ("ASTRAVUE_HTTP_TOKEN", "ASTRAVUE_STATE_KEYS")
    assert {n for n in ENV if is_secret(n) and n not in deployment} <= set(variables)


# ---------------------------------------------------------------- manifest.json (MCP Bundle)
def test_manifest_user_config_feeds_the_server() -> None:
    server = MANIFEST["server"]
    assert MANIFEST["manifest_version"] == "0.4" and server["type"] == "uv"
    assert server["mcp_config"]["args"][-2:] == ["astravue-mcp", "serve"]
    config = MANIFEST["user_config"]
    assert config["client_secret"]["sensitive"] is True
    assert not any(c.get("sensitive") for k, c in config.items() if k != "client_secret")
    env = server["mcp_config"]["env"]
    for var, value in env.items():
        key = re.fullmatch(r"\$\{user_config\.(\w+)\}", value).group(1)  # type: ignore[union-attr]
        assert var in ENV and key in config
        assert config[key].get("sensitive", False) is is_secret(var)
    assert {k for k, c in config.items() if c["required"]} == {"client_id", "client_secret", "org_id"}


def test_manifest_lists_the_servers_tools() -> None:
    # Names must match; descriptions are refreshed with them (and always exact in a packed bundle).
    sys.path.insert(0, str(ROOT / "scripts"))
    import build_mcpb

    if os.environ.get("UPDATE_SNAPSHOTS"):
        build_mcpb.sync_manifest()
        return
    names = [t["name"] for t in build_mcpb.server_tools()]
    assert [t["name"] for t in MANIFEST["tools"]] == names, "tools changed: UPDATE_SNAPSHOTS=1 (module docstring)"


def test_mcpb_validates_and_packs(dists: dict[str, Path]) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    import build_mcpb

    with zipfile.ZipFile(dists["mcpb"]) as zf:
        names = set(zf.namelist())
        packed: dict[str, Any] = json.loads(zf.read("manifest.json"))
    assert {"manifest.json", "pyproject.toml", "LICENSE", SEED, "astravue_mcp/__main__.py"} <= names
    assert not [n for n in names if n.startswith((".venv", "tests/", "node_modules")) or "__pycache__" in n]
    assert packed["tools"] == build_mcpb.server_tools()
    assert {k: v for k, v in packed.items() if k != "tools"} == {k: v for k, v in MANIFEST.items() if k != "tools"}


def test_release_workflow_runs_the_tested_release_check() -> None:
    workflow = (ROOT / ".github" / "workflows" / "release.yml").read_text(encoding="utf-8")
    assert 'tags: ["v*"]' in workflow
    # The check job runs nothing but the command tested above; only the publish job uploads.
    check = workflow.split("\n  check:\n", 1)[1].split("\n  publish:\n", 1)[0]
    runs = re.findall(r"^\s+run: (.*)$", check, re.M)
    assert runs == ['python3 tasks.py release --tag "${GITHUB_REF_NAME}" --outdir dist']
    assert "needs: check" in workflow.split("\n  publish:\n", 1)[1]
