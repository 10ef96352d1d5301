// The design form fitted to its binder type: a linker only for a bicyclic binder, a glycan only
// for a glycopeptide; and how many predictions the campaign will run, as its options change.
(function () {
  "use strict";
  const el = (id) => document.getElementById(id);
  const row = (id) => (el(id) ? el(id).closest("p") : null);
  const number = (id) => Number((el(id) || {}).value || 0);

  function fit() {
    const type = el("id_binder_type").value;
    if (row("id_linker")) row("id_linker").hidden = type !== "bicyclic";
    if (row("id_glycan")) row("id_glycan").hidden = type !== "glycopeptide";
    const population = number("id_population"), generations = number("id_generations");
    const elites = number("id_elites");
    const predictions = population + Math.max(0, generations - 1) * Math.max(0, population - elites);
    el("design-size").dataset.predictions = predictions;
    el("design-size").textContent =
      "This campaign runs up to " + predictions + " predictions (" + population + " in the first generation, then " +
      Math.max(0, population - elites) + " new in each of " + Math.max(0, generations - 1) +
      " more), each with " + (number("id_diffusion_samples") || 1) + " sample(s); fewer if it reaches a plateau.";
  }
  for (const id of ["id_binder_type", "id_population", "id_generations", "id_elites", "id_diffusion_samples"]) {
    if (el(id)) el(id).addEventListener("input", fit);
    if (el(id)) el(id).addEventListener("change", fit);
  }
  fit();
})();
