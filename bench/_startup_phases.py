"""Where our start-up time goes, in CPU seconds, inside one fresh process (printed as JSON).

Phases of start-up: the SDK import (which the floor pays too), our own modules, argument parsing
plus building the server (tools listed from this install's cache, resources, prompts). Then, after
start-up and so not counted in it, what the first calls pay: importing the tool area modules and
building every tool (which start-up does only when the cache is missing or made from other code).
"""

import json
import time

clock = time.process_time
t0 = clock()
import mcp.server.mcpserver  # noqa: E402,F401

t1 = clock()
from astravue_mcp.cli import load_settings, parser  # noqa: E402
from astravue_mcp.server import build_server  # noqa: E402

t2 = clock()
parser().parse_args(["serve"])
server = build_server(load_settings())
t3 = clock()
from astravue_mcp.tools.registry import load_specs  # noqa: E402

load_specs()
t4 = clock()
for tool in server.catalogue.published:
    server.catalogue.tool(tool.name)
t5 = clock()
print(
    json.dumps(
        {
            "sdk_import": t1 - t0,
            "our_modules": t2 - t1,
            "cli_and_build": t3 - t2,
            "deferred_tool_modules": t4 - t3,
            "deferred_tool_builds": t5 - t4,
        }
    )
)
