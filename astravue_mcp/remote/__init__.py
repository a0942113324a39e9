"""Remote multi-user mode: this server as an OAuth authorization server in front of Astravue's Keycloak.

A person's MCP client (Claude, ChatGPT, an IDE) connects to ``<public URL>/mcp``, gets a 401 that
points at our Protected Resource Metadata, registers (DCR) and sends the person through our consent
page to Astravue's login. We exchange Astravue's code ourselves with one confidential API client,
keep that person's Astravue tokens encrypted in the shared state, and give their client our own
tokens, bound to our ``/mcp`` URL. Each MCP request then runs with that person's Astravue login
and organisation; Astravue's tokens never leave the server, and ours are never sent upstream.

- :mod:`.state`: what replicas share (memory or Redis); :mod:`.crypto`: the key ring sealing secrets in it;
- :mod:`.grants`: each person's Astravue login in the shared state, and their API client;
- :mod:`.provider`: the authorization server (the SDK's handlers call it), consent and callback;
- :mod:`.app`: the ASGI app that puts it together (``astravue-mcp serve --remote``).
"""
