// The host protocol of MCP Apps (JSON-RPC 2.0 over postMessage), written out by hand: no SDK bundle.
// Only messages from the window that embeds this page are read; anything else is ignored.
const Bridge = (() => {
  const VERSION = "2026-01-26";
  const TIMEOUT_MS = 30000;
  const host = window.parent;
  const pending = new Map();
  let nextId = 1;
  let handlers = {};
  let lastSize = "";

  function post(message) {
    // The page cannot know the host's origin (hosts choose their sandbox origins); the host checks ours.
    host.postMessage(Object.assign({ jsonrpc: "2.0" }, message), "*");
  }

  function request(method, params) {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(method + ": the host did not answer"));
      }, TIMEOUT_MS);
      pending.set(id, { resolve, reject, timer });
      post({ id, method, params });
    });
  }

  function notify(method, params) {
    post(params === undefined ? { method } : { method, params });
  }

  function applyContext(context) {
    if (!context) return;
    const root = document.documentElement;
    if (context.theme === "light" || context.theme === "dark") {
      root.dataset.theme = context.theme;
      root.style.colorScheme = context.theme;
    }
    const variables = (context.styles && context.styles.variables) || {};
    for (const [name, value] of Object.entries(variables)) {
      if (name.startsWith("--") && typeof value === "string" && value) root.style.setProperty(name, value);
    }
    const fonts = context.styles && context.styles.css && context.styles.css.fonts;
    if (typeof fonts === "string" && fonts) {
      let style = document.getElementById("host-fonts");
      if (!style) {
        style = document.createElement("style");
        style.id = "host-fonts";
        document.head.appendChild(style);
      }
      style.textContent = fonts;
    }
    const box = context.containerDimensions || {};
    if (typeof box.maxHeight === "number") root.style.maxHeight = box.maxHeight + "px";
    if (typeof box.height === "number") root.style.height = "100vh";
    if (handlers.onContext) handlers.onContext(context);
  }

  function reportSize() {
    const root = document.documentElement;
    const width = Math.ceil(root.scrollWidth);
    const height = Math.ceil(root.scrollHeight);
    const size = width + "x" + height;
    if (size === lastSize) return;
    lastSize = size;
    notify("ui/notifications/size-changed", { width, height });
  }

  function answer(id, result) {
    post({ id, result });
  }

  function onMessage(event) {
    if (event.source !== host || host === window) return;
    const msg = event.data;
    if (!msg || msg.jsonrpc !== "2.0") return;
    if (msg.id !== undefined && !msg.method) {
      const call = pending.get(msg.id);
      if (!call) return;
      pending.delete(msg.id);
      clearTimeout(call.timer);
      if (msg.error) call.reject(new Error(msg.error.message || "the host refused the request"));
      else call.resolve(msg.result);
      return;
    }
    const params = msg.params || {};
    switch (msg.method) {
      case "ui/notifications/tool-input":
        if (handlers.onInput) handlers.onInput(params.arguments || {});
        break;
      case "ui/notifications/tool-result":
        if (handlers.onResult) handlers.onResult(params);
        break;
      case "ui/notifications/tool-cancelled":
        if (handlers.onCancel) handlers.onCancel(params.reason || "cancelled");
        break;
      case "ui/notifications/host-context-changed":
        applyContext(params);
        break;
      case "ui/resource-teardown":
      case "ping":
        if (msg.id !== undefined) answer(msg.id, {});
        break;
      default:
        if (msg.id !== undefined) post({ id: msg.id, error: { code: -32601, message: "Method not found" } });
    }
  }

  async function start(appName, options) {
    handlers = options || {};
    if (host === window) return null; // opened on its own: there is no host to talk to
    window.addEventListener("message", onMessage);
    const result = await request("ui/initialize", {
      appInfo: { name: appName, version: "1" },
      appCapabilities: { availableDisplayModes: ["inline"] },
      protocolVersion: VERSION,
    });
    applyContext(result && result.hostContext);
    notify("ui/notifications/initialized", {});
    if (window.ResizeObserver) {
      let queued = false;
      new ResizeObserver(() => {
        if (queued) return;
        queued = true;
        requestAnimationFrame(() => {
          queued = false;
          reportSize();
        });
      }).observe(document.documentElement);
    }
    reportSize();
    return result;
  }

  // Calls a tool of this page's server through the host; resolves with its result, rejects with its error text.
  async function callTool(name, args) {
    const result = await request("tools/call", { name, arguments: args || {} });
    if (result && result.isError) throw new Error(textOf(result) || name + " failed");
    return result;
  }

  function textOf(result) {
    return ((result && result.content) || [])
      .filter((block) => block.type === "text")
      .map((block) => block.text)
      .join("\n");
  }

  return { start, callTool, textOf, reportSize };
})();
