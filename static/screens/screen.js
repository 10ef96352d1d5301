// A screen's ligands: counts, a histogram of predicted affinity (Chart.js) and the ranked table,
// from the ligands API, kept up to date by the screen's live stream (a ligand scored, the screen
// ended).
(function () {
  "use strict";
  const section = document.getElementById("screen");
  if (!section) return;
  const { figure, cell, follow } = window.portalTable;
  const body = section.querySelector("tbody");
  const cofold = section.querySelector("thead").textContent.includes("ipTM");
  const state = { chart: null, ligands: [] };
  window.portalScreen = state; // for people and tests

  function histogram(values) {
    section.dataset.charted = values.length;
    if (!values.length) return;
    // Bins narrow enough to tell ligands apart, wide enough to count them.
    const span = Math.max(...values) - Math.min(...values);
    const width = span <= 0.5 ? 0.02 : span <= 2 ? 0.1 : span <= 5 ? 0.25 : 0.5;
    const low = Math.floor(Math.min(...values) / width) * width;
    const bins = Math.floor((Math.max(...values) - low) / width) + 1;
    const labels = [];
    const counts = new Array(bins).fill(0);
    for (let i = 0; i < bins; i++) labels.push((low + i * width).toFixed(2));
    for (const v of values) counts[Math.min(bins - 1, Math.floor((v - low) / width))] += 1;
    const data = { labels, datasets: [{ label: "ligands by predicted log10 IC50 (µM)", data: counts, backgroundColor: "#3b82f6" }] };
    if (state.chart) {
      state.chart.data = data;
      state.chart.update("none");
    } else {
      state.chart = new Chart(document.getElementById("screen-histogram"), {
        type: "bar",
        data,
        options: { animation: false, scales: { x: { title: { display: true, text: "log10 IC50 (µM), lower binds more strongly" } }, y: { beginAtZero: true, ticks: { precision: 0 } } } },
      });
    }
  }

  follow(section.dataset.api, function (all) {
    state.ligands = all;
    body.replaceChildren();
    for (const l of all) {
      const row = document.createElement("tr");
      row.dataset.index = l.index;
      const name = document.createElement(l.structure ? "a" : "span");
      name.textContent = l.name;
      if (l.structure) name.href = l.structure;
      cell(row, l.rank === null ? "—" : String(l.rank));
      cell(row, name);
      cell(row, l.smiles, "smiles");
      cell(row, figure(l.affinity_pred_value));
      cell(row, l.affinity_pred_value === null ? "—" : window.portalAffinity.ic50(l.affinity_pred_value));
      cell(row, figure(l.affinity_probability_binary));
      if (cofold) cell(row, figure(l.iptm));
      cell(row, l.error ? l.state + ": " + l.error : l.state);
      body.appendChild(row);
    }
    const scored = all.filter((l) => l.affinity_pred_value !== null);
    const running = all.filter((l) => l.state === "running").length;
    const ended = all.filter((l) => l.rank !== null || l.error).length;
    section.querySelector("#screen-count").textContent =
      all.length + " ligands: " + ended + " done (" + scored.length + " scored), " + running + " running, " + (all.length - ended - running) + " waiting";
    section.dataset.scored = scored.length;
    histogram(scored.map((l) => l.affinity_pred_value));
  });
})();
