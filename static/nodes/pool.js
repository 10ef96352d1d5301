// The node pool page, live: the server sends the whole pool whenever it changes (and every
// few seconds); the table is rebuilt from it. Names and addresses come from nodes: text only.
(function () {
  "use strict";
  const table = document.getElementById("pool");
  if (!table) return;
  const body = table.tBodies[0];
  const live = document.getElementById("pool-live");
  let nodes = [];
  const GiB = 1024 * 1024 * 1024;

  function text(tag, value, cls) {
    const node = document.createElement(tag);
    node.textContent = value;
    if (cls) node.className = cls;
    return node;
  }
  function bar(label, fraction, title) {
    const box = document.createElement("div");
    box.className = "bar";
    box.title = title || "";
    const fill = document.createElement("div");
    fill.className = "fill";
    fill.style.width = Math.max(0, Math.min(100, fraction * 100)) + "%";
    box.appendChild(fill);
    box.appendChild(text("span", label, "bar-label"));
    return box;
  }
  function ago(iso) {
    if (!iso) return "never";
    const seconds = Math.max(0, Math.round((Date.now() - new Date(iso)) / 1000));
    if (seconds < 90) return seconds + " s ago";
    if (seconds < 5400) return Math.round(seconds / 60) + " min ago";
    return new Date(iso).toLocaleString();
  }
  async function act(node, action, button) {
    button.disabled = true;
    const token = document.querySelector("[name=csrfmiddlewaretoken]").value;
    const response = await fetch(table.dataset.api + node.id + "/" + action + "/", {
      method: "POST",
      headers: { "X-CSRFToken": token, Accept: "application/json" },
    });
    button.disabled = false;
    if (response.ok) {
      const updated = await response.json();
      Object.assign(node, { status: updated.status, enabled: updated.enabled, draining: updated.draining });
      render();
    }
  }
  // A GPU's lanes: how many run a job and what those jobs' memory estimates add up to, then
  // each lane with its job or its warm engine.
  function lanes(gpu, list) {
    const box = document.createElement("div");
    box.className = "lanes small";
    const busy = list.filter((lane) => lane.job);
    const estimated = busy.reduce((sum, lane) => sum + (lane.job.memory || 0), 0);
    const summary = text("div", "lanes: " + busy.length + " of " + list.length + " running" +
      (busy.length ? ", estimates " + (estimated / GiB).toFixed(1) + " / " + (gpu.memory_total / GiB).toFixed(1) + " GiB" : ""));
    summary.dataset.lanes = busy.length + "/" + list.length;
    box.appendChild(summary);
    for (const lane of list) {
      let what = "";
      if (lane.job) {
        what = "#" + lane.job.id + " " + lane.job.kind + (lane.job.memory ? " (est. " + (lane.job.memory / GiB).toFixed(1) + " GiB)" : "");
      } else if (lane.engines.length) {
        what = lane.engines.map((e) => e.kind + " engine " + e.state + (e.memory ? " (" + (e.memory / GiB).toFixed(1) + " GiB)" : "")).join(", ");
      } else continue;
      const line = text("div", "lane " + lane.lane + ": " + what, lane.job ? "lane lane-busy" : "lane muted");
      line.dataset.lane = lane.lane;
      box.appendChild(line);
    }
    return box;
  }
  function row(node) {
    const tr = document.createElement("tr");
    tr.dataset.node = node.name;
    tr.appendChild(text("td", node.name));
    tr.appendChild(text("td", node.address || "—"));
    const status = document.createElement("td");
    status.appendChild(text("span", node.status, "status status-" + node.status));
    // What it can run (its heartbeat's engines), and for one that is not ready, the fix.
    for (const [name, engine] of Object.entries(node.engines || {}).sort()) {
      const ready = Boolean(engine && engine.ready);
      const line = text("div", name + (ready ? ": ready" : ": not ready" + (engine && engine.fix ? " (" + engine.fix + ")" : "")),
        "engine small " + (ready ? "muted" : "engine-missing"));
      line.dataset.engine = name;
      status.appendChild(line);
    }
    tr.appendChild(status);

    const gpus = document.createElement("td");
    if (!node.gpus.length) gpus.appendChild(text("span", node.cpu_slots + " CPU slot(s), no GPU", "muted"));
    for (const gpu of node.gpus) {
      const box = document.createElement("div");
      box.className = "gpu";
      box.appendChild(text("div", "GPU " + gpu.index + ": " + gpu.name + (gpu.temperature != null ? ", " + gpu.temperature + " °C" : "")));
      const used = gpu.memory_used / GiB, total = gpu.memory_total / GiB;
      box.appendChild(bar("memory " + used.toFixed(1) + " / " + total.toFixed(1) + " GiB", gpu.memory_total ? gpu.memory_used / gpu.memory_total : 0));
      box.appendChild(bar("utilisation " + (gpu.utilization ?? 0) + "%", (gpu.utilization ?? 0) / 100));
      box.appendChild(lanes(gpu, (node.lanes || {})[String(gpu.index)] || []));
      gpus.appendChild(box);
    }
    tr.appendChild(gpus);

    const load = document.createElement("td");
    if (node.cpu_percent != null) load.appendChild(bar("CPU " + Math.round(node.cpu_percent) + "%", node.cpu_percent / 100));
    if (node.memory_total) load.appendChild(bar("memory " + (node.memory_used / GiB).toFixed(1) + " / " + (node.memory_total / GiB).toFixed(1) + " GiB", node.memory_used / node.memory_total));
    tr.appendChild(load);

    const beat = text("td", ago(node.last_heartbeat_at), "heartbeat");
    beat.dataset.at = node.last_heartbeat_at || "";
    tr.appendChild(beat);

    const jobs = document.createElement("td");
    if (!node.running.length) jobs.appendChild(text("span", "none", "muted"));
    for (const job of node.running) {
      const link = text("a", "#" + job.id + " " + job.name + (job.gpu != null ? " (GPU " + job.gpu + (node.lanes_per_gpu > 1 ? ", lane " + job.lane : "") + ")" : ""));
      link.href = "/jobs/" + job.id + "/";
      jobs.appendChild(link);
      jobs.appendChild(document.createElement("br"));
    }
    tr.appendChild(jobs);

    const buttons = document.createElement("td");
    buttons.className = "actions";
    const choices = [];
    if (!node.enabled || node.draining) choices.push(["enable", "Enable"]);
    if (node.enabled) choices.push(["disable", "Disable"]);
    if (node.enabled && !node.draining) choices.push(["drain", "Drain"]);
    for (const [action, label] of choices) {
      const button = text("button", label, action === "enable" ? "" : "danger");
      button.type = "button";
      button.dataset.action = action;
      button.addEventListener("click", () => act(node, action, button));
      buttons.appendChild(button);
    }
    tr.appendChild(buttons);
    return tr;
  }
  function render() {
    body.replaceChildren(...nodes.map(row));
    if (!nodes.length) {
      const tr = document.createElement("tr");
      const td = text("td", "No nodes yet: `manage.py createnode NAME` registers one.");
      td.colSpan = 8;
      tr.appendChild(td);
      body.appendChild(tr);
    }
  }
  setInterval(function () {
    for (const cell of body.querySelectorAll("td.heartbeat")) cell.textContent = ago(cell.dataset.at);
  }, 1000);

  let retry = 500;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/ws/nodes/");
    window.portalPool = { socket: socket };
    socket.onopen = function () {
      retry = 500;
      live.textContent = "● live";
    };
    socket.onmessage = function (message) {
      const data = JSON.parse(message.data);
      if (data.type === "pool") {
        nodes = data.nodes;
        render();
      }
    };
    socket.onclose = function (close) {
      live.textContent = close.code === 4403 ? "○ staff only" : "○ reconnecting";
      if (close.code !== 4403) setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }
  connect();
})();
