// A design campaign's candidates table, from the candidates API, kept up to date by the
// campaign's live stream (a candidate scored, a generation bred, the campaign ended).
(function () {
  "use strict";
  const section = document.getElementById("candidates");
  if (!section) return;
  const { figure, cell, follow } = window.portalTable;
  const body = section.querySelector("tbody");

  follow(section.dataset.api, function (all) {
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
      cell(row, c.constraints_met === null ? "—" : Math.round(c.constraints_met * 100) + "%");
      cell(row, figure(c.fitness));
      cell(row, c.error ? c.state + ": " + c.error : c.state);
      body.appendChild(row);
    }
    const scored = all.filter((c) => c.fitness !== null).length;
    section.querySelector("#candidates-count").textContent =
      all.length + " candidates, " + scored + " scored";
    section.dataset.scored = scored;
  });
})();
