"""The package's shape: no import cycle between its modules, and imports only point down the layers.

Read with ``ast`` from the source (every import statement, also inside functions and
``TYPE_CHECKING`` blocks), so the check does not depend on what happens to be imported at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "astravue_mcp"

# From the top down: a module may import modules of its own layer or of any layer below it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("entry points", ("astravue_mcp.__main__", "astravue_mcp.cli", "astravue_mcp.asgi", "astravue_mcp.demo")),
    (
        "commands, transports and checks",
        ("astravue_mcp.http_app", "astravue_mcp.doctor", "astravue_mcp.account_commands", "astravue_mcp.remote.app"),
    ),
    ("server assembly", ("astravue_mcp.server",)),
    ("catalogue, resources, prompts", ("astravue_mcp.catalogue", "astravue_mcp.resources", "astravue_mcp.prompts")),
    (
        "tool areas and their machinery",
        ("astravue_mcp.tools", "astravue_mcp.surface", "astravue_mcp.schemas", "astravue_mcp.views"),
    ),
    ("remote sign-in, per-person logins, shared state", ("astravue_mcp.remote",)),
    ("per-server state and identity", ("astravue_mcp.state", "astravue_mcp.identity")),
    ("embedded sandbox", ("astravue_mcp.sandbox",)),
    ("API client", ("astravue_mcp.api",)),
    ("credentials", ("astravue_mcp.auth",)),
    ("protocol mechanics", ("astravue_mcp.protocol", "astravue_mcp.elicitation")),
    ("settings and errors", ("astravue_mcp", "astravue_mcp.config", "astravue_mcp.errors", "astravue_mcp.redact")),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The package modules ``name`` imports, anywhere in its source."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            submodules = {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES}
            found |= submodules
            if len(submodules) < len(node.names):  # also names defined in ``base`` itself
                found.add(base)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def layer_of(name: str) -> int:
    best = max(
        (
            (i, prefix)
            for i, (_, prefixes) in enumerate(LAYERS)
            for prefix in prefixes
            if name == prefix or name.startswith(prefix + ".")
        ),
        key=lambda hit: len(hit[1]),
    )
    return best[0]


def cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle() -> None:
    assert cycles() == []


def test_imports_point_down_the_layers() -> None:
    upward = [
        f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for name, targets in sorted(GRAPH.items())
        for target in sorted(targets)
        if layer_of(target) < layer_of(name)
    ]
    assert upward == []


def test_every_module_has_a_layer() -> None:
    for name in MODULES:
        layer_of(name)  # raises on a module no layer claims


def test_every_function_level_import_says_why_it_is_deferred() -> None:
    """An import inside a function is allowed only to keep a heavy module out of start-up, and says so."""
    silent = []
    for name, path in MODULES.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        top = {id(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)}
        top |= {  # TYPE_CHECKING blocks
            id(inner)
            for node in tree.body
            if isinstance(node, ast.If)
            for inner in ast.walk(node)
            if isinstance(inner, ast.Import | ast.ImportFrom)
        }
        silent += [
            f"{name}:{node.lineno}: {lines[node.lineno - 1].strip()}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            and id(node) not in top
            and "# deferred:" not in lines[node.lineno - 1]
        ]
    assert silent == []
