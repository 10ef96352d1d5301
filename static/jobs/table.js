// What a kind's own table on a job page shares (a design campaign's candidates, a screen's
// ligands): every row of a paginated API list, cells of text, figures to three places, and
// reading the list again whenever the job's live stream says something happened, at most twice
// a second.
(function () {
  "use strict";

  function figure(value) {
    return value === null || value === undefined ? "—" : Number(value).toFixed(3);
  }

  // A cell of text (never HTML), or of the element given.
  function cell(row, value, cls) {
    const td = document.createElement("td");
    if (value instanceof Node) td.appendChild(value);
    else td.textContent = value;
    if (cls) td.className = cls;
    row.appendChild(td);
  }

  // Every page of a DRF list, following `next`; null if a page was refused.
  async function readAll(url) {
    const all = [];
    while (url) {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok) return null;
      const page = await response.json();
      all.push(...page.results);
      url = page.next;
    }
    return all;
  }

  // `show(rows)` with the list at `url` now, and again after the job's events.
  function follow(url, show) {
    const root = document.getElementById("job");
    let pending = null;
    async function load() {
      pending = null;
      const rows = await readAll(url);
      if (rows !== null) show(rows);
    }
    root.addEventListener("job:event", function () {
      if (pending === null) pending = setTimeout(load, 500);
    });
    load();
  }

  window.portalTable = { figure, cell, readAll, follow };
})();
