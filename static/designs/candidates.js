// A design campaign's candidates table: read from the candidates API when the page opens and
// again whenever the campaign's live stream says something happened (a candidate scored, a
// generation bred, the campaign ended), at most twice a second.
(function () {
  "use strict";
  const section = document.getElementById("candidates");
  if (!section) return;
  const root = document.getElementById("job");
  const body = section.querySelector("tbody");
  const figure = (value) => (value === null || value === undefined ? "—" : Number(value).toFixed(3));
  let pending = null;

  function cell(row, value, cls) {
    const td = document.createElement("td");
    if (value instanceof Node) td.appendChild(value);
    else td.textContent = value;
    if (cls) td.className = cls;
    row.appendChild(td);
  }

  async function load() {
    pending = null;
    const all = [];
    let url = section.dataset.api;
    while (url) {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const page = await response.json();
      all.push(...page.results);
      url = page.next;
    }
    body.replaceChildren();
    for (const c of all) {
      const row = document.createElement("tr");
      row.dataset.sequence = c.sequence;
      row.className = "candidate-" + (c.fitness === null ? c.state : "scored");
      cell(row, c.rank === null ? "—" : String(c.rank));
      const sequence = document.createElement(c.structure ? "a" : "span");
      sequence.textContent = c.sequence;
      if (c.structure) sequence.href = c.structure;
      cell(row, sequence, "sequence");
      cell(row, String(c.generation));
      cell(row, figure(c.pair_iptm));
      cell(row, figure(c.binder_plddt));
      cell(row, figure(c.developability));
      cell(row, figure(c.fitness));
      cell(row, c.error ? c.state + ": " + c.error : c.state);
      body.appendChild(row);
    }
    const scored = all.filter((c) => c.fitness !== null).length;
    section.querySelector("#candidates-count").textContent =
      all.length + " candidates, " + scored + " scored";
    section.dataset.scored = scored;
  }
  function soon() {
    if (pending === null) pending = setTimeout(load, 500);
  }
  root.addEventListener("job:event", soon);
  load();
})();
