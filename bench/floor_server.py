"""The floor: the smallest useful MCPServer (one trivial tool) started the way astravue-mcp is.

``--guarded`` serves it through astravue-mcp's stdio guard (``astravue_mcp.stdio``), which
``bench/guards.py`` compares with the bare floor.
"""

import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("floor")


@server.tool()
def ping(text: str = "") -> str:
    """Answer at once."""
    return text


if __name__ == "__main__":
    if "--guarded" in sys.argv:
        from astravue_mcp.stdio import answering_every_line

        with answering_every_line():
            server.run("stdio")
    else:
        server.run("stdio")
