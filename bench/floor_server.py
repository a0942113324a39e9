"""The floor: the smallest useful MCPServer (one trivial tool) started the way astravue-mcp is."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("floor")


@server.tool()
def ping(text: str = "") -> str:
    """Answer at once."""
    return text


if __name__ == "__main__":
    server.run("stdio")
