// A prediction's results: the structure in Mol* (the `molstar` viewer, coloured by pLDDT, one
// sample at a time), its confidence per chain and chain pair, and the PAE as a heatmap. Every
// figure comes from the job's own artifacts (the structure file, the confidence JSON, the PAE
// through /pae/), never from the whole archive.
(function () {
  "use strict";
  const section = document.getElementById("prediction");
  if (!section) return;
  const root = document.getElementById("job");
  const api = root.dataset.api;
  const el = (id) => document.getElementById(id);
  const state = { viewer: null, sample: null, loaded: null, samples: [], chains: [], theme: "plddt-confidence", plddtCharts: [] };
  window.portalPrediction = state; // for people and tests

  // The name boltz gave its files: `<record>_model_<k>.cif`, `affinity_<record>.json`, …
  const record = section.dataset.record;
  const artifact = (name) => api + "artifacts/" + encodeURIComponent(name);
  async function json(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(url + ": " + response.status);
    return response.json();
  }
  function cell(tag, value, cls) {
    const node = document.createElement(tag);
    node.textContent = value;
    if (cls) node.className = cls;
    return node;
  }
  const figure = (value) => (value === undefined || value === null ? "—" : typeof value === "string" ? value : Number(value).toFixed(3));

  async function show() {
    const names = (await json(api + "artifacts/")).map((a) => a.name);
    const prefix = record + "_model_";
    const sample = (n) => n.startsWith(prefix) && /^\d+\.(cif|pdb)$/.test(n.slice(prefix.length));
    state.samples = names
      .filter(sample)
      .map((n) => ({ name: n, k: Number(n.slice(prefix.length).split(".")[0]), format: n.endsWith(".cif") ? "mmcif" : "pdb" }))
      .sort((a, b) => a.k - b.k);
    if (!state.samples.length) return;
    el("prediction-waiting").hidden = true;
    el("prediction-result").hidden = false;
    state.chains = names.includes("chains.json") ? (await json(artifact("chains.json"))).chains : [];
    await drawAffinity(names);
    const select = el("sample");
    select.replaceChildren();
    for (const sample of state.samples) {
      const option = cell("option", "sample " + sample.k + (sample.k === 0 ? " (best)" : ""));
      option.value = sample.k;
      select.appendChild(option);
    }
    select.addEventListener("change", () => choose(Number(select.value)));
    for (const button of document.querySelectorAll("#colourings button")) {
      button.addEventListener("click", () => recolour(button.dataset.theme));
    }
    await drawSamples();
    // Nothing from outside: no remote state server, no volume streaming.
    state.viewer = await molstar.Viewer.create("viewer", {
      layoutShowRemoteState: false,
      volumeStreamingDisabled: true,
      layoutIsExpanded: false,
      layoutShowControls: true,
      layoutShowSequence: true,
      layoutShowLog: false,
      layoutShowLeftPanel: false,
      viewportShowExpand: true,
      viewportShowSelectionMode: false,
      viewportShowAnimation: false,
      collapseRightPanel: false,
    });
    await choose(0);
  }

  async function drawAffinity(names) {
    const name = names.find((n) => n === "affinity_" + record + ".json");
    el("affinity").hidden = !name;
    if (!name) return;
    window.portalAffinity.fill(el("affinity-figures"), await json(artifact(name)));
  }

  async function choose(k) {
    const sample = state.samples.find((s) => s.k === k);
    await state.viewer.plugin.clear();
    await state.viewer.loadStructureFromUrl(artifact(sample.name), sample.format, false, {
      representationParams: { theme: { globalName: state.theme } },
    });
    state.sample = k;
    state.loaded = sample.name;
    section.dataset.sample = k;
    const confidence = await json(artifact("confidence_" + record + "_model_" + k + ".json"));
    drawConfidence(confidence);
    el("sample").value = String(k);
    for (const row of el("samples").tBodies[0].rows) row.classList.toggle("chosen", Number(row.dataset.sample) === k);
    await drawPae(k);
    await drawPlddt(k);
  }

  // Mol*'s colourings a scientist asks for most, as buttons: pLDDT, chain, secondary structure.
  async function recolour(theme) {
    state.theme = theme;
    for (const button of document.querySelectorAll("#colourings button")) {
      button.classList.toggle("chosen", button.dataset.theme === theme);
    }
    section.dataset.theme = theme;
    await choose(state.sample);
  }

  // Every sample's figures side by side; a row shows that sample.
  async function drawSamples() {
    const body = el("samples").tBodies[0];
    body.replaceChildren();
    const several = state.chains.length > 1;
    for (const sample of state.samples) {
      const c = await json(artifact("confidence_" + record + "_model_" + sample.k + ".json"));
      const tr = document.createElement("tr");
      tr.dataset.sample = sample.k;
      for (const value of [sample.k, figure(c.confidence_score), figure(c.ptm), several ? figure(c.iptm) : "—", figure(c.complex_plddt)]) {
        tr.appendChild(cell("td", value));
      }
      tr.addEventListener("click", () => choose(sample.k));
      body.appendChild(tr);
    }
  }

  // A sample's pLDDT along each chain (one chart a chain), AlphaFold's bands behind.
  async function drawPlddt(k) {
    const data = await json(api + "plddt/?sample=" + k);
    for (const chart of state.plddtCharts) chart.destroy();
    state.plddtCharts = [];
    const box = el("plddt-charts");
    box.replaceChildren();
    let at = 0;
    for (const chain of data.chains || []) {
      const values = data.values.slice(at, at + chain.tokens);
      at += chain.tokens;
      const figureBox = document.createElement("figure");
      figureBox.dataset.chain = chain.name;
      figureBox.dataset.points = values.length;
      figureBox.dataset.mean = (values.reduce((a, b) => a + b, 0) / Math.max(1, values.length)).toFixed(1);
      figureBox.appendChild(cell("figcaption", "chain " + chain.name + " (" + chain.type + ")"));
      const canvas = document.createElement("canvas");
      figureBox.appendChild(canvas);
      box.appendChild(figureBox);
      state.plddtCharts.push(new Chart(canvas, {
        type: "line",
        data: { labels: values.map((_, i) => i + 1), datasets: [{ label: "pLDDT", data: values, pointRadius: 0, borderWidth: 1.5 }] },
        options: { animation: false, scales: { y: { min: 0, max: 100 }, x: { title: { display: true, text: chain.type === "nonpolymer" ? "atom" : "residue" } } }, plugins: { legend: { display: false } } },
      }));
    }
    box.dataset.sample = k;
  }

  function chainName(index) {
    const chain = state.chains[Number(index)];
    return chain ? chain.name : String(index);
  }

  function drawConfidence(confidence) {
    // Interface figures only where there is an interface: boltz writes 0 for a monomer's ipTM,
    // which would read as a bad score.
    const types = state.chains.map((c) => c.type);
    const several = types.length > 1;
    const ligand = types.includes("nonpolymer");
    const proteins = types.filter((t) => t === "protein").length;
    const af3 = section.dataset.engine === "af3";
    const rows = [
      [af3 ? "ranking score" : "confidence score", confidence.confidence_score, true],
      ["fraction disordered", confidence.fraction_disordered, af3],
      ["has a clash", confidence.has_clash === undefined ? undefined : (confidence.has_clash ? "yes" : "no"), af3],
      ["pTM", confidence.ptm, true],
      ["ipTM", confidence.iptm, several],
      ["complex pLDDT", confidence.complex_plddt, true],
      ["complex ipLDDT", confidence.complex_iplddt, several],
      ["complex PDE (Å)", confidence.complex_pde, true],
      ["complex iPDE (Å)", confidence.complex_ipde, several],
      ["ligand ipTM", confidence.ligand_iptm, ligand && several],
      ["protein ipTM", confidence.protein_iptm, proteins > 1],
    ].filter(([, , applies]) => applies || !state.chains.length);
    const body = el("confidence").tBodies[0];
    body.replaceChildren();
    for (const [label, value] of rows) {
      if (value === undefined) continue;
      const tr = document.createElement("tr");
      tr.appendChild(cell("th", label));
      const td = cell("td", figure(value));
      td.dataset.key = label;
      tr.appendChild(td);
      body.appendChild(tr);
    }
    const indices = Object.keys(confidence.chains_ptm || {});
    const head = el("pairs").tHead;
    head.replaceChildren();
    const top = document.createElement("tr");
    top.appendChild(cell("th", ""));
    for (const j of indices) top.appendChild(cell("th", chainName(j)));
    head.appendChild(top);
    const pairs = el("pairs").tBodies[0];
    pairs.replaceChildren();
    for (const i of indices) {
      const tr = document.createElement("tr");
      tr.appendChild(cell("th", chainName(i)));
      for (const j of indices) {
        const value = i === j ? confidence.chains_ptm[i] : ((confidence.pair_chains_iptm || {})[i] || {})[j];
        const td = cell("td", figure(value), i === j ? "diagonal" : "");
        td.dataset.pair = chainName(i) + "-" + chainName(j);
        tr.appendChild(td);
      }
      pairs.appendChild(tr);
    }
  }

  // Low error dark green, high error white, as AlphaFold's pages draw it.
  function colour(byte) {
    const t = byte / 255;
    return [Math.round(255 * t), Math.round(100 + 155 * t), Math.round(255 * t)];
  }

  async function drawPae(k) {
    const pae = await json(api + "pae/?sample=" + k);
    const n = pae.size;
    const bytes = Uint8Array.from(atob(pae.values), (c) => c.charCodeAt(0));
    const matrix = document.createElement("canvas");
    matrix.width = matrix.height = n;
    const image = matrix.getContext("2d").createImageData(n, n);
    for (let i = 0; i < n * n; i++) {
      const [r, g, b] = colour(bytes[i]);
      image.data.set([r, g, b, 255], i * 4);
    }
    matrix.getContext("2d").putImageData(image, 0, 0);
    const canvas = el("pae");
    const context = canvas.getContext("2d");
    context.imageSmoothingEnabled = false;
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.drawImage(matrix, 0, 0, canvas.width, canvas.height);
    // Chain borders.
    context.strokeStyle = "#000";
    context.lineWidth = 1;
    let at = 0;
    for (const chain of (pae.chains || []).slice(0, -1)) {
      at += chain.tokens;
      const x = (at / n) * canvas.width;
      context.beginPath();
      context.moveTo(x, 0);
      context.lineTo(x, canvas.height);
      context.moveTo(0, x);
      context.lineTo(canvas.width, x);
      context.stroke();
    }
    canvas.dataset.size = n;
    canvas.dataset.sample = k;
    const scale = el("pae-scale");
    const s = scale.getContext("2d");
    for (let x = 0; x < scale.width; x++) {
      const [r, g, b] = colour(Math.round((x / (scale.width - 1)) * 255));
      s.fillStyle = "rgb(" + r + "," + g + "," + b + ")";
      s.fillRect(x, 0, 1, scale.height);
    }
  }

  if (root.dataset.state === "succeeded") show();
  root.addEventListener("job:finished", (event) => {
    if (event.detail === "succeeded") show();
    else el("prediction-waiting").textContent = "No structure: the job " + event.detail + ".";
  });
})();
