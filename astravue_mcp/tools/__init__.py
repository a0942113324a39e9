"""Tools by API area, one module each. Importing the modules registers their tools in ``registry.REGISTRY``.

Any module in this package is an area module except the two shared ones, so adding an area is
adding a file.
"""

from importlib import import_module
from pkgutil import iter_modules

SHARED = {"registry", "common"}


def load_all() -> None:
    for module in iter_modules(__path__):
        if module.name not in SHARED and not module.name.startswith("_"):
            import_module(f"{__name__}.{module.name}")


def toolset_of(name: str) -> str:
    """The toolset a tool is listed under (its first)."""
    from astravue_mcp.tools.registry import REGISTRY

    load_all()
    return REGISTRY[name].toolsets[0]
