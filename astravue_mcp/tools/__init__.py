"""Tools by API area. Importing this package registers every tool in ``registry.REGISTRY``."""

from importlib import import_module

AREAS = ("spaces", "projects")


def load_all() -> None:
    for area in AREAS:
        import_module(f"astravue_mcp.tools.{area}")
