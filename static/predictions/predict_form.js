// The new-prediction form: entities (proteins, DNA, RNA with copies, modifications and cyclic,
// a protein's MSA; ligands by SMILES or CCD code), a FASTA to fill them from, constraints,
// templates and affinity, written
// on submit as the Boltz document (JSON) the server checks and stores. Nothing here decides
// what is valid: the server names any problem beside the form.
(function () {
  "use strict";
  const form = document.getElementById("job-form");
  if (!form || !document.getElementById("entities")) return;
  const el = (id) => document.getElementById(id);
  const entities = el("entities");
  const constraints = el("constraints");
  const affinity = el("affinity");
  const templates = el("templates");
  // The project's uploads a document may name by id: MSAs for proteins, structures as templates.
  const uploads = JSON.parse(el("project-uploads").textContent);
  const msaUploads = uploads.filter((u) => u.kind === "a3m" || u.kind === "csv");
  const structures = uploads.filter((u) => u.kind === "mmcif" || u.kind === "pdb");
  const CHAINS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

  function node(tag, attrs, children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") n.textContent = v;
      else if (k === "class") n.className = v;
      else n.setAttribute(k, v);
    }
    for (const child of children || []) n.appendChild(child);
    return n;
  }
  function field(label, input) {
    return node("label", { class: "entity-field" }, [document.createTextNode(label + " "), input]);
  }
  function usedChains() {
    return Array.from(entities.querySelectorAll("[data-field=ids]"))
      .flatMap((i) => i.value.split(",").map((c) => c.trim()))
      .filter(Boolean);
  }
  function nextChain() {
    const used = new Set(usedChains());
    return CHAINS.split("").find((c) => !used.has(c)) || "";
  }

  function addEntity(kind, values) {
    values = values || {};
    const row = node("div", { class: "entity", "data-kind": kind });
    row.appendChild(node("strong", { text: kind }));
    const ids = node("input", { "data-field": "ids", size: "6", value: values.ids || nextChain() });
    row.appendChild(field("chain(s)", ids));
    if (kind === "ligand") {
      const how = node("select", { "data-field": "how" }, [
        node("option", { value: "smiles", text: "SMILES" }),
        node("option", { value: "ccd", text: "CCD code" }),
      ]);
      how.value = values.ccd ? "ccd" : "smiles";
      row.appendChild(how);
      row.appendChild(node("input", { "data-field": "ligand", size: "30", value: values.ccd || values.smiles || "" }));
    } else {
      row.appendChild(node("textarea", { "data-field": "sequence", rows: "2", placeholder: "sequence" }));
      row.querySelector("[data-field=sequence]").value = values.sequence || "";
      const mods = (values.modifications || []).map((m) => m.position + ":" + m.ccd).join(", ");
      row.appendChild(field("modifications", node("input", { "data-field": "modifications", size: "14", placeholder: "4:SEP, 9:MLY", value: mods })));
      const cyclic = node("input", { "data-field": "cyclic", type: "checkbox" });
      cyclic.checked = Boolean(values.cyclic);
      row.appendChild(field("cyclic", cyclic));
      if (kind === "protein") {
        const msa = node("select", { "data-field": "msa" }, [
          node("option", { value: "", text: "from the job's MSA source" }),
          node("option", { value: "empty", text: "single sequence" }),
        ]);
        for (const u of msaUploads) msa.appendChild(node("option", { value: String(u.id), text: u.name }));
        if (values.msa != null && msa.querySelector("option[value='" + String(values.msa) + "']")) msa.value = String(values.msa);
        row.appendChild(field("MSA", msa));
        // The letters boltz takes but reads as an unknown residue, said as the server says them.
        const ambiguous = node("span", { class: "entity-warning", "data-field": "ambiguous", hidden: "" });
        row.appendChild(ambiguous);
        const sequence = row.querySelector("[data-field=sequence]");
        const checkLetters = () => {
          const found = Array.from(sequence.value.replace(/\s/g, "").toUpperCase())
            .map((letter, i) => [letter, i + 1])
            .filter(([letter]) => "BJOUZ".includes(letter));
          ambiguous.hidden = !found.length;
          ambiguous.textContent = found.slice(0, 10).map(([l, p]) => l + " at " + p).join(", ") +
            ": boltz reads B, J, O, U and Z as an unknown residue (UNK)";
        };
        sequence.addEventListener("input", checkLetters);
        checkLetters();
      }
    }
    const remove = node("button", { type: "button", class: "link", text: "remove" });
    remove.addEventListener("click", () => { row.remove(); refreshAffinity(); });
    row.appendChild(remove);
    row.addEventListener("input", refreshAffinity);
    entities.appendChild(row);
    refreshAffinity();
    return row;
  }

  function refreshAffinity() {
    const chosen = affinity.value;
    const ligands = Array.from(entities.querySelectorAll(".entity[data-kind=ligand] [data-field=ids]"))
      .flatMap((i) => i.value.split(",").map((c) => c.trim()))
      .filter(Boolean);
    affinity.replaceChildren(node("option", { value: "", text: "no ligand" }));
    for (const chain of ligands) affinity.appendChild(node("option", { value: chain, text: "ligand " + chain }));
    if (ligands.includes(chosen)) affinity.value = chosen;
  }

  // [A, 12] → "A:12" (the reverse of token() below, for a form sent back with errors).
  function tokenText(value) {
    return Array.isArray(value) ? value.join(":") : value == null ? "" : String(value);
  }

  function addConstraint(kind, values) {
    values = values || {};
    const text = (key) => tokenText(values[key]);
    const row = node("div", { class: "constraint", "data-kind": kind });
    row.appendChild(node("strong", { text: kind }));
    if (kind === "pocket") {
      row.appendChild(field("binder chain", node("input", { "data-field": "binder", size: "3", value: text("binder") })));
      row.appendChild(field("contacts", node("input", { "data-field": "contacts", size: "16", placeholder: "A:12, A:45", value: (values.contacts || []).map(tokenText).join(", ") })));
    } else if (kind === "contact") {
      row.appendChild(field("between", node("input", { "data-field": "token1", size: "6", placeholder: "A:12", value: text("token1") })));
      row.appendChild(field("and", node("input", { "data-field": "token2", size: "6", placeholder: "B:3", value: text("token2") })));
    } else {
      row.appendChild(field("atom", node("input", { "data-field": "atom1", size: "10", placeholder: "A:6:SG", value: text("atom1") })));
      row.appendChild(field("to atom", node("input", { "data-field": "atom2", size: "10", placeholder: "B:1:C1", value: text("atom2") })));
    }
    if (kind !== "bond") row.appendChild(field("max distance (Å)", node("input", { "data-field": "distance", size: "4", value: values.max_distance == null ? "6" : String(values.max_distance) })));
    const remove = node("button", { type: "button", class: "link", text: "remove" });
    remove.addEventListener("click", () => row.remove());
    row.appendChild(remove);
    constraints.appendChild(row);
    return row;
  }

  function addTemplate(values) {
    values = values || {};
    const row = node("div", { class: "template" });
    const structure = node("select", { "data-field": "structure" });
    for (const u of structures) structure.appendChild(node("option", { value: String(u.id), "data-kind": u.kind, text: u.name }));
    const chosen = values.cif != null ? values.cif : values.pdb;
    if (chosen != null && structure.querySelector("option[value='" + String(chosen) + "']")) structure.value = String(chosen);
    row.appendChild(field("structure", structure));
    const chains = values.chain_id == null ? "" : [].concat(values.chain_id).join(", ");
    row.appendChild(field("for chain(s)", node("input", { "data-field": "chains", size: "6", placeholder: "all", value: chains })));
    const force = node("input", { "data-field": "force", type: "checkbox" });
    force.checked = Boolean(values.force);
    row.appendChild(field("force, within (Å)", force));
    row.appendChild(node("input", { "data-field": "threshold", size: "4", value: values.threshold == null ? "" : String(values.threshold) }));
    const remove = node("button", { type: "button", class: "link", text: "remove" });
    remove.addEventListener("click", () => row.remove());
    row.appendChild(remove);
    templates.appendChild(row);
    return row;
  }

  // "A:12" → ["A", 12]; "A:6:SG" → ["A", 6, "SG"] (what the server checks is what we send).
  function token(text) {
    const parts = text.split(":").map((p) => p.trim());
    return parts.map((p, i) => (i === 1 && /^\d+$/.test(p) ? Number(p) : p));
  }

  function documentFromForm() {
    const sequences = [];
    for (const row of entities.querySelectorAll(".entity")) {
      const kind = row.dataset.kind;
      const ids = row.querySelector("[data-field=ids]").value.split(",").map((c) => c.trim()).filter(Boolean);
      const body = { id: ids.length === 1 ? ids[0] : ids };
      if (kind === "ligand") {
        body[row.querySelector("[data-field=how]").value] = row.querySelector("[data-field=ligand]").value.trim();
      } else {
        body.sequence = row.querySelector("[data-field=sequence]").value.replace(/\s+/g, "");
        const mods = row.querySelector("[data-field=modifications]").value.split(",").map((m) => m.trim()).filter(Boolean);
        if (mods.length) {
          body.modifications = mods.map((m) => {
            const [position, ccd] = m.split(":").map((p) => p.trim());
            return { position: /^\d+$/.test(position) ? Number(position) : position, ccd: ccd };
          });
        }
        if (row.querySelector("[data-field=cyclic]").checked) body.cyclic = true;
        const msa = row.querySelector("[data-field=msa]");
        if (msa && msa.value === "empty") body.msa = "empty";
        else if (msa && msa.value !== "") body.msa = Number(msa.value);
      }
      sequences.push({ [kind]: body });
    }
    const document_ = { version: 1, sequences: sequences };
    const rules = [];
    for (const row of constraints.querySelectorAll(".constraint")) {
      const kind = row.dataset.kind;
      const value = (name) => row.querySelector("[data-field=" + name + "]").value.trim();
      const distance = row.querySelector("[data-field=distance]") ? Number(value("distance")) : null;
      if (kind === "pocket") {
        rules.push({ pocket: { binder: value("binder"), contacts: value("contacts").split(",").filter((c) => c.trim()).map(token), max_distance: distance } });
      } else if (kind === "contact") {
        rules.push({ contact: { token1: token(value("token1")), token2: token(value("token2")), max_distance: distance } });
      } else {
        rules.push({ bond: { atom1: token(value("atom1")), atom2: token(value("atom2")) } });
      }
    }
    if (rules.length) document_.constraints = rules;
    const used = [];
    for (const row of templates.querySelectorAll(".template")) {
      const structure = row.querySelector("[data-field=structure]");
      if (!structure.value) continue;
      const kind = structure.selectedOptions[0].dataset.kind === "pdb" ? "pdb" : "cif";
      const template = { [kind]: Number(structure.value) };
      const chains = row.querySelector("[data-field=chains]").value.split(",").map((c) => c.trim()).filter(Boolean);
      if (chains.length) template.chain_id = chains.length === 1 ? chains[0] : chains;
      const threshold = row.querySelector("[data-field=threshold]").value.trim();
      if (row.querySelector("[data-field=force]").checked) template.force = true;
      if (threshold) template.threshold = /^[\d.]+$/.test(threshold) ? Number(threshold) : threshold;
      used.push(template);
    }
    if (used.length) document_.templates = used;
    if (affinity.value) document_.properties = [{ affinity: { binder: affinity.value } }];
    return document_;
  }

  function fillFromFasta(text) {
    entities.replaceChildren();
    let header = null, lines = [];
    const close = () => {
      if (header === null) return;
      const parts = header.split("|");
      const kind = (parts[1] || "protein").toLowerCase();
      const body = lines.join("");
      if (kind === "smiles" || kind === "ccd") addEntity("ligand", { ids: parts.length > 1 ? parts[0] : nextChain(), [kind]: body });
      else addEntity(["protein", "dna", "rna"].includes(kind) ? kind : "protein", { ids: parts.length > 1 ? parts[0] : nextChain(), sequence: body });
    };
    for (const raw of text.split(/\r?\n/)) {
      const line = raw.trim();
      if (line.startsWith(">")) { close(); header = line.slice(1).split(/\s+/)[0]; lines = []; }
      else if (line) lines.push(line);
    }
    close();
  }

  for (const kind of ["protein", "dna", "rna", "ligand"]) el("add-" + kind).addEventListener("click", () => addEntity(kind));
  for (const kind of ["pocket", "contact", "bond"]) el("add-" + kind).addEventListener("click", () => addConstraint(kind));
  el("fasta-fill").addEventListener("click", () => fillFromFasta(el("fasta").value));
  el("add-template").addEventListener("click", () => addTemplate());
  el("add-template").disabled = !structures.length;
  el("no-structures").hidden = Boolean(structures.length);
  // A form sent back with errors keeps what was described (an empty field reads "null").
  let previous = null;
  try {
    previous = JSON.parse(el("id_input").value || "null");
  } catch (e) { /* the server says what is wrong with it */ }
  const described = previous && Array.isArray(previous.sequences) ? previous.sequences : [];
  for (const item of described) {
    const [kind, body] = Object.entries(item)[0];
    const ids = Array.isArray(body.id) ? body.id.join(", ") : body.id;
    addEntity(kind, { ...body, ids: ids });
  }
  if (!described.length) addEntity("protein");
  for (const item of previous && Array.isArray(previous.constraints) ? previous.constraints : []) {
    const [kind, body] = Object.entries(item)[0] || [];
    if (["pocket", "contact", "bond"].includes(kind)) addConstraint(kind, body || {});
  }
  for (const item of previous && Array.isArray(previous.templates) ? previous.templates : []) {
    if (item && typeof item === "object") addTemplate(item);
  }
  for (const item of previous && Array.isArray(previous.properties) ? previous.properties : []) {
    if (item && item.affinity && item.affinity.binder) affinity.value = item.affinity.binder;
  }
  form.addEventListener("submit", () => {
    const described = Array.from(entities.querySelectorAll(".entity")).some((row) => {
      const filled = row.querySelector("[data-field=sequence], [data-field=ligand]");
      return filled && filled.value.trim();
    });
    el("id_input").value = described ? JSON.stringify(documentFromForm()) : "";
  });
  window.portalPredictForm = { documentFromForm: documentFromForm, fillFromFasta: fillFromFasta };
})();
