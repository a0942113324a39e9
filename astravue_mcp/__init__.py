"""astravue-mcp: an MCP server for the Astravue public API."""

__version__ = "0.1.0"
