// Boltz-2's affinity figures as a table, for the prediction page and the affinity page: the
// value is log10 of the IC50 in µM (lower binds more strongly), the probability whether the
// ligand binds at all; the ensemble's two members beside.
window.portalAffinity = (function () {
  "use strict";
  const figure = (value) => (value === undefined || value === null ? "—" : Number(value).toFixed(3));
  function ic50(log10) {
    const micromolar = Math.pow(10, log10);
    if (micromolar < 1) return (micromolar * 1000).toPrecision(3) + " nM";
    if (micromolar >= 1000) return (micromolar / 1000).toPrecision(3) + " mM";
    return micromolar.toPrecision(3) + " µM";
  }
  function cell(tag, value) {
    const node = document.createElement(tag);
    node.textContent = value;
    return node;
  }
  // Fill `table`'s body with the figures of `a`, boltz's affinity JSON.
  function fill(table, a) {
    const rows = [
      ["log10 IC50 (µM), predicted", a.affinity_pred_value, "value"],
      ["IC50, predicted", a.affinity_pred_value === undefined ? "—" : ic50(a.affinity_pred_value), "ic50"],
      ["binder probability", a.affinity_probability_binary, "probability"],
      ["member 1: log10 IC50 / probability", [a.affinity_pred_value1, a.affinity_probability_binary1], "member-1"],
      ["member 2: log10 IC50 / probability", [a.affinity_pred_value2, a.affinity_probability_binary2], "member-2"],
    ];
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const [label, value, key] of rows) {
      const tr = document.createElement("tr");
      tr.appendChild(cell("th", label));
      const text = Array.isArray(value) ? value.map(figure).join(" / ") : typeof value === "string" ? value : figure(value);
      const td = cell("td", text);
      td.dataset.key = key;
      tr.appendChild(td);
      body.appendChild(tr);
    }
  }
  return { fill, ic50 };
})();
