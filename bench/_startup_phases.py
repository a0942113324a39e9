"""Where our start-up time goes, in CPU seconds, inside one fresh process (printed as JSON).

``-X importtime`` cannot see the tool area modules (they are loaded with importlib), so the
phases are timed here instead: the SDK import (which the floor pays too), our own modules, the
tool modules, and building the server (argument models and schemas of every tool, resources, prompts).
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
from astravue_mcp.tools import load_all  # noqa: E402

load_all()
t3 = clock()
parser().parse_args(["serve"])
build_server(load_settings())
t4 = clock()
print(json.dumps({"sdk_import": t1 - t0, "our_modules": t2 - t1, "tool_modules": t3 - t2, "cli_and_build": t4 - t3}))
