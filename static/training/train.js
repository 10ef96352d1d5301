// The training form: when a dataset is chosen, show its columns (CSV/TSV) or the labels its
// FASTA headers carry, so the scientist picks the sequence and label columns from what is there.
(function () {
  "use strict";
  const form = document.getElementById("job-form");
  if (!form) return;
  const dataset = document.getElementById("id_inputs");
  // Read as an attribute: a form field of that name would shadow form.dataset.
  const previewUrl = form.getAttribute("data-preview");
  const preview = document.getElementById("preview");
  const columnsBox = document.getElementById("columns");
  const fastaLabels = document.getElementById("fasta-labels");

  function text(tag, value) {
    const node = document.createElement(tag);
    node.textContent = value;
    return node;
  }
  function asSelect(input, columns, preferred) {
    // Replace a text input by a select of the columns, keeping its name and id.
    const select = document.createElement("select");
    select.name = input.name;
    select.id = input.id;
    for (const column of columns) {
      const option = text("option", column);
      option.value = column;
      select.appendChild(option);
    }
    const wanted = columns.includes(input.value) ? input.value : columns.find((c) => preferred.test(c));
    if (wanted) select.value = wanted;
    input.replaceWith(select);
  }
  async function show() {
    preview.replaceChildren();
    const response = await fetch(previewUrl + dataset.value + "/preview/", { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const data = await response.json();
    const fasta = data.kind === "fasta";
    columnsBox.hidden = fasta;
    fastaLabels.hidden = !fasta;
    if (fasta) {
      const labels = new Set();
      for (const record of data.records) {
        const found = /(?:^|[\s|;,])label=([^\s|;,]+)/.exec(record.header);
        if (found) labels.add(found[1]);
      }
      fastaLabels.textContent = labels.size
        ? "Labels in the first headers: " + Array.from(labels).join(", ")
        : "No label=… found in the first headers.";
      const list = document.createElement("ul");
      for (const record of data.records) list.appendChild(text("li", ">" + record.header + " (" + record.length + " residues)"));
      preview.appendChild(list);
      return;
    }
    asSelect(document.getElementById("id_sequence_column"), data.columns, /seq/i);
    asSelect(document.getElementById("id_label_column"), data.columns, /label|class|target|activity|y$/i);
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    for (const column of data.columns) head.appendChild(text("th", column));
    const body = table.createTBody();
    for (const row of data.rows) {
      const tr = body.insertRow();
      for (const cell of row) tr.appendChild(text("td", cell.length > 40 ? cell.slice(0, 40) + "…" : cell));
    }
    preview.appendChild(text("p", "First rows:"));
    preview.appendChild(table);
  }
  dataset.addEventListener("change", show);
  show();
})();
