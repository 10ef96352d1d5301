// An affinity job's results: the complex it started from in Mol*, and Boltz-2's figures.
(function () {
  "use strict";
  const section = document.getElementById("affinity-result");
  if (!section) return;
  const api = document.getElementById("job").dataset.api;
  const record = section.dataset.record;
  const artifact = (name) => api + "artifacts/" + encodeURIComponent(name);
  const state = { viewer: null, loaded: null };
  window.portalAffinityJob = state; // for people and tests

  async function show() {
    const response = await fetch(api + "artifacts/", { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const names = (await response.json()).map((a) => a.name);
    const figures = "affinity_" + record + ".json";
    if (!names.includes(figures)) return;
    document.getElementById("affinity-waiting").hidden = true;
    section.hidden = false;
    const a = await (await fetch(artifact(figures))).json();
    window.portalAffinity.fill(document.getElementById("affinity-figures"), a);
    const complex = record + "_complex.cif";
    state.viewer = await molstar.Viewer.create("viewer", {
      layoutShowRemoteState: false,
      volumeStreamingDisabled: true,
      layoutIsExpanded: false,
      layoutShowControls: false,
      layoutShowSequence: true,
      layoutShowLog: false,
      layoutShowLeftPanel: false,
      viewportShowAnimation: false,
    });
    await state.viewer.loadStructureFromUrl(artifact(complex), "mmcif", false);
    state.loaded = complex;
  }
  // Once the job has succeeded: now, or when the page's live state says so.
  const root = document.getElementById("job");
  if (root.dataset.state === "succeeded") show();
  root.addEventListener("job:finished", (event) => {
    if (event.detail === "succeeded") show();
    else document.getElementById("affinity-waiting").textContent = "No figures: the job " + event.detail + ".";
  });
})();
