// What the pages share besides the bridge: elements built without parsing data as HTML, and the task card.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function fmtDate(iso) {
  if (!iso) return "";
  const day = new Date(iso.length === 10 ? iso + "T00:00:00Z" : iso);
  return day.toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
}

function daysLate(iso, today) {
  return Math.round((Date.parse(today) - Date.parse(iso.slice(0, 10))) / 86400000);
}

function showStatus(text, kind) {
  const bar = document.getElementById("status");
  bar.textContent = text || "";
  bar.className = "status" + (kind ? " " + kind : "");
  bar.hidden = !text;
}

// The footnote every view has: what it is based on, what could not be read, and whether it may change tasks.
function showNotes(data, first) {
  const notes = [...(first || []), ...(data.skipped || []).map((s) => "Skipped " + s + ".")];
  if (!data.editable) notes.push("Read-only: changes are switched off on this server.");
  document.getElementById("note").textContent = notes.join(" ");
}

function priorityClass(label) {
  return "chip p-" + String(label || "").toLowerCase().replace(/[^a-z]+/g, "-");
}

// One task as a card. `ctx` gives the day, the status labels a task may move to, whether changes are
// allowed, and `change(task, fields)` which calls the server and re-renders.
function taskCard(task, ctx) {
  const late = task.overdue === true;
  const meta = el(
    "div",
    { class: "meta" },
    task.project ? el("span", { class: "chip" }, task.project) : ctx.personal ? el("span", { class: "chip" }, "Personal") : null,
    task.status && ctx.showStatus ? el("span", { class: "chip" + (task.completion === 100 ? " done" : "") }, task.status) : null,
    task.priority ? el("span", { class: priorityClass(task.priority) }, task.priority) : null,
    task.due
      ? el("span", { class: "due" + (late ? " late" : ""), title: "Due " + task.due }, "Due " + fmtDate(task.due))
      : null,
    late ? el("span", { class: "chip late" }, daysLate(task.due, ctx.today) > 0 ? daysLate(task.due, ctx.today) + "d overdue" : "overdue") : null,
    task.owners && task.owners.length ? el("span", { class: "owners" }, task.owners.join(", ")) : null,
  );
  const card = el(
    "article",
    { class: "task" + (late ? " overdue" : ""), "data-task-id": task.id },
    el("div", { class: "title" }, task.title),
    meta,
    typeof task.completion === "number"
      ? el(
          "div",
          { class: "bar" + (task.completion === 100 ? " full" : ""), title: task.completion + "% done" },
          el("i", { style: "width:" + task.completion + "%" }),
        )
      : null,
  );
  if (ctx.editable) card.append(editRow(task, ctx));
  return card;
}

function editRow(task, ctx) {
  const where = task.project_id ? { space_id: task.space_id, project_id: task.project_id } : {};
  const status = el(
    "select",
    { "aria-label": "Status", name: "status", onchange: (e) => ctx.change(task, Object.assign({ status: e.target.value }, where)) },
    (ctx.statuses.includes(task.status) || !task.status ? ctx.statuses : [task.status, ...ctx.statuses]).map((s) =>
      el("option", { value: s, selected: s === task.status }, s),
    ),
  );
  const due = el("input", {
    type: "date",
    name: "due",
    "aria-label": "Due date",
    value: task.due ? task.due.slice(0, 10) : "",
    onchange: (e) => e.target.value && ctx.change(task, Object.assign({ due: e.target.value }, where)),
  });
  const done = el("input", {
    type: "number",
    name: "completion",
    min: 0,
    max: 100,
    step: 10,
    "aria-label": "Percent done",
    value: task.completion ?? 0,
    onchange: (e) => ctx.change(task, Object.assign({ completion: Number(e.target.value) }, where)),
  });
  return el(
    "details",
    { class: "change" },
    el("summary", {}, "Change"),
    el("div", { class: "edit" }, status, due, el("label", { class: "sub" }, done, " %")),
  );
}

// Sends one change through the app-only tool, then lets the page reload its data.
async function changeTask(task, fields, reload) {
  showStatus("Saving task " + task.id + "…");
  document.querySelectorAll(".edit select, .edit input").forEach((c) => (c.disabled = true));
  try {
    await Bridge.callTool("astravue_change_task", Object.assign({ task_id: task.id }, fields));
    await reload();
    const what = Object.entries(fields).filter(([k]) => !k.endsWith("_id")).map(([k, v]) => k + " " + v).join(", ");
    showStatus("Saved: “" + task.title + "” " + what + ".");
  } catch (error) {
    showStatus(error.message, "error");
    document.querySelectorAll(".edit select, .edit input").forEach((c) => (c.disabled = false));
  }
}

// Wires a page to its host: the tool result (or a refresh) gives `render` the view's structured content.
function startView(name, render) {
  let args = {};
  async function reload() {
    const result = await Bridge.callTool("astravue_refresh_view", { view: name, arguments: args });
    render(result.structuredContent, reload);
  }
  function onResult(result) {
    if (result.isError || !result.structuredContent) {
      showStatus(Bridge.textOf(result) || "The tool returned no data.", "error");
      return;
    }
    showStatus("");
    render(result.structuredContent, reload);
  }
  document.getElementById("refresh").addEventListener("click", async () => {
    showStatus("Refreshing…");
    try {
      await reload();
      showStatus("");
    } catch (error) {
      showStatus(error.message, "error");
    }
  });
  Bridge.start("astravue-" + name, {
    onInput: (input) => (args = input),
    onResult,
    onCancel: (reason) => showStatus("Cancelled: " + reason, "error"),
  }).catch((error) => showStatus(error.message, "error"));
}
