// The job page, live: a WebSocket brings the job's events (log lines, metric points, progress,
// state changes), each once and in order; after a dropped connection it resumes from the last
// event id seen. Everything a job or a user wrote is put in the page as text, never as HTML.
(function () {
  "use strict";
  const root = document.getElementById("job");
  if (!root) return;
  const jobId = root.dataset.jobId;
  const FINISHED = ["succeeded", "failed", "cancelled"];
  const MAX_LINES = 10000;
  const el = (id) => document.getElementById(id);
  const log = el("log");
  const search = el("log-search");
  const follow = el("log-follow");
  const charts = {};
  const state = {
    last: 0,
    jobState: root.dataset.state,
    startedAt: root.dataset.startedAt ? new Date(root.dataset.startedAt) : null,
    finishedAt: root.dataset.finishedAt ? new Date(root.dataset.finishedAt) : null,
    socket: null,
    retry: 500,
    ended: false, // the job's end has come over the socket
  };
  window.portalJob = state; // for people and tests: state.socket, state.last

  function text(tag, value, cls) {
    const node = document.createElement(tag);
    node.textContent = value;
    if (cls) node.className = cls;
    return node;
  }

  // --- log console ------------------------------------------------------------------------
  function matches(line) {
    const q = search.value.trim().toLowerCase();
    return !q || line.toLowerCase().includes(q);
  }
  function addLine(event) {
    const row = text("div", event.line, "line");
    row.dataset.id = event.id;
    row.hidden = !matches(event.line);
    log.appendChild(row);
    while (log.childElementCount > MAX_LINES) log.removeChild(log.firstElementChild);
    if (follow.checked) log.scrollTop = log.scrollHeight;
  }
  function applySearch() {
    let shown = 0;
    for (const row of log.children) {
      row.hidden = !matches(row.textContent);
      if (!row.hidden) shown += 1;
    }
    el("log-matches").textContent = search.value.trim() ? shown + " matching lines" : "";
  }
  search.addEventListener("input", applySearch);
  log.addEventListener("scroll", function () {
    follow.checked = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  });

  // --- charts, one per metric name --------------------------------------------------------
  function addPoint(event) {
    el("no-metrics").hidden = true;
    let chart = charts[event.name];
    if (!chart) {
      const box = document.createElement("figure");
      box.className = "chart";
      box.dataset.metric = event.name;
      box.appendChild(text("figcaption", event.name));
      const canvas = document.createElement("canvas");
      box.appendChild(canvas);
      el("charts").appendChild(box);
      chart = new Chart(canvas, {
        type: "line",
        data: { datasets: [{ label: event.name, data: [], pointRadius: 2, borderWidth: 2, tension: 0.1 }] },
        options: {
          animation: false,
          parsing: false,
          plugins: { legend: { display: false } },
          scales: { x: { type: "linear", title: { display: true, text: "step" } } },
        },
      });
      charts[event.name] = chart;
    }
    chart.data.datasets[0].data.push({ x: event.step, y: event.value });
    chart.update("none");
    chart.canvas.parentNode.dataset.points = chart.data.datasets[0].data.length;
  }

  // --- progress, state, elapsed time ------------------------------------------------------
  function setProgress(event) {
    el("job-progress").value = event.percent;
    el("job-percent").textContent = Math.round(event.percent) + "%";
    el("job-progress-message").textContent = event.message || "";
  }
  function stamp(iso) {
    return new Date(iso).toISOString().slice(0, 19).replace("T", " "); // as the server writes it (UTC)
  }
  function setState(event) {
    const before = state.jobState;
    state.jobState = event.state;
    const badge = el("job-state");
    badge.textContent = event.state;
    badge.className = "state state-" + event.state;
    if (event.state === "running") {
      state.startedAt = new Date(event.at);
      state.finishedAt = null;
      el("job-where").textContent = event.reason;
    }
    if (FINISHED.includes(event.state)) {
      state.finishedAt = new Date(event.at);
      // Its progress says how it ended; the jobs it ran after are final too.
      if (event.state === "succeeded") {
        el("job-progress").value = 100;
        el("job-percent").textContent = "100%";
      }
      el("job-progress-message").textContent = event.reason || "";
      refreshFamily();
      const cancel = el("job-cancel");
      if (cancel) cancel.hidden = true;
      // A finished job sends nothing more: the page is no longer live.
      state.ended = true;
      el("job-live").hidden = true;
      loadArtifacts();
      root.dispatchEvent(new CustomEvent("job:finished", { detail: event.state }));
    }
    // The history table was rendered with the page; later changes are added to it.
    if (event.id > Number(root.dataset.historyUntil)) {
      const row = document.createElement("tr");
      for (const value of [stamp(event.at), before, event.state, event.reason, ""]) {
        row.appendChild(text("td", value));
      }
      el("transitions").tBodies[0].appendChild(row);
    }
  }
  async function refreshFamily() {
    for (const chip of document.querySelectorAll("#job-family [data-child]")) {
      const response = await fetch("/api/v1/jobs/" + chip.dataset.child + "/", { headers: { Accept: "application/json" } });
      if (!response.ok) continue;
      const child = await response.json();
      chip.textContent = child.state;
      chip.className = "state state-" + child.state;
    }
  }
  function tick() {
    if (!state.startedAt) return;
    const end = state.finishedAt || new Date();
    const seconds = Math.max(0, Math.round((end - state.startedAt) / 1000));
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    el("job-elapsed").textContent = (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + String(s).padStart(2, "0");
  }
  setInterval(tick, 1000);
  tick();

  async function loadArtifacts() {
    const response = await fetch(root.dataset.api + "artifacts/", { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const list = el("artifacts");
    list.replaceChildren();
    for (const artifact of await response.json()) {
      const item = document.createElement("li");
      const link = text("a", artifact.name);
      link.href = root.dataset.api + "artifacts/" + artifact.name.split("/").map(encodeURIComponent).join("/");
      item.appendChild(link);
      item.appendChild(document.createTextNode(" "));
      item.appendChild(text("span", artifact.size + " bytes", "muted"));
      list.appendChild(item);
    }
    el("archive").hidden = list.childElementCount === 0;
  }

  // --- the live connection ----------------------------------------------------------------
  function handle(event) {
    if (event.id <= state.last) return; // never twice
    state.last = event.id;
    if (event.type === "log") addLine(event);
    else if (event.type === "metric") addPoint(event);
    else if (event.type === "progress") setProgress(event);
    else if (event.type === "state") setState(event);
    root.dataset.lastEvent = event.id;
    // For a kind's own part of the page (jobs/kinds/base.py: Page).
    root.dispatchEvent(new CustomEvent("job:event", { detail: event }));
  }
  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/ws/jobs/" + jobId + "/?after=" + state.last);
    state.socket = socket;
    socket.onopen = function () {
      state.retry = 500;
      el("job-live").textContent = "● live";
    };
    socket.onmessage = function (message) {
      handle(JSON.parse(message.data));
    };
    socket.onclose = function (close) {
      if (state.ended) return; // it has sent the job's end: there is nothing more to follow
      el("job-live").textContent = "○ reconnecting";
      if (close.code === 4404 || close.code === 4401) {
        el("job-live").textContent = "○ not allowed";
        return;
      }
      setTimeout(connect, state.retry);
      state.retry = Math.min(state.retry * 2, 10000);
    };
  }
  connect();

  const cancel = el("job-cancel");
  if (cancel) {
    cancel.addEventListener("click", async function () {
      const name = document.title.split(" · ")[0];
      if (!window.confirm("Cancel " + name + "? What it has done so far is not kept.")) return;
      cancel.disabled = true;
      const token = document.querySelector("[name=csrfmiddlewaretoken]").value;
      const response = await fetch(root.dataset.api + "cancel/", {
        method: "POST",
        headers: { "X-CSRFToken": token, Accept: "application/json" },
      });
      if (!response.ok) {
        cancel.disabled = false;
        const body = await response.json().catch(() => ({}));
        alert(body.detail || "The job could not be cancelled.");
      } else {
        cancel.textContent = "Cancelling…";
      }
    });
  }
})();
