// Upload page: sends the file to the API with XMLHttpRequest, whose upload progress events
// drive the progress bar, and shows the portal's answer (or its error detail) when it is done.
(function () {
  "use strict";
  const form = document.getElementById("upload-form");
  if (!form) return;
  const input = document.getElementById("upload-file");
  const status = document.getElementById("upload-status");
  const bar = document.getElementById("upload-progress");
  const percent = document.getElementById("upload-percent");
  const message = document.getElementById("upload-message");
  const button = document.getElementById("upload-start");

  function show(text, kind) {
    message.textContent = text;
    message.className = "message " + (kind || "");
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const file = input.files[0];
    if (!file) return;
    if (file.size > Number(form.dataset.maxBytes)) {
      status.hidden = false;
      show("This file is larger than the portal accepts.", "error");
      return;
    }
    const data = new FormData();
    data.append("project", form.dataset.project);
    data.append("file", file);
    const request = new XMLHttpRequest();
    request.open("POST", form.dataset.api);
    request.setRequestHeader("X-CSRFToken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      const value = Math.floor((e.loaded / e.total) * 100);
      bar.value = value;
      percent.textContent = value + "%";
    });
    request.upload.addEventListener("load", function () {
      show("Sent; the portal is storing the file…");
    });
    request.addEventListener("load", function () {
      button.disabled = false;
      let body = {};
      try { body = JSON.parse(request.responseText); } catch (e) { body = {}; }
      if (request.status === 201 || request.status === 200) {
        bar.value = 100;
        percent.textContent = "100%";
        const what = request.status === 201 ? "Stored" : "Already there";
        show(what + ": " + body.name + " (" + body.kind + ", " + body.size + " bytes), SHA-256 " + body.sha256, "success");
      } else {
        show("Refused: " + (body.detail || ("HTTP " + request.status)), "error");
      }
    });
    request.addEventListener("error", function () {
      button.disabled = false;
      show("The connection broke off; nothing was stored. Try again.", "error");
    });
    status.hidden = false;
    bar.value = 0;
    percent.textContent = "0%";
    show("Sending " + file.name + "…");
    button.disabled = true;
    request.send(data);
  });
})();
