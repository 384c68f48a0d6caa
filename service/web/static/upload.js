// Drag-and-drop onto the upload form, and a busy message while the server analyses the file.
// Loaded from the app itself (Content-Security-Policy: script-src 'self'); no inline script.
(function () {
  "use strict";
  var form = document.querySelector("form.upload");
  if (!form) { return; }
  var input = form.querySelector("input[type=file]");
  var status = form.querySelector(".status");
  ["dragenter", "dragover"].forEach(function (name) {
    form.addEventListener(name, function (event) {
      event.preventDefault();
      form.classList.add("dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (name) {
    form.addEventListener(name, function () { form.classList.remove("dragging"); });
  });
  form.addEventListener("drop", function (event) {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", function () {
    if (status) { status.hidden = false; }
    var button = form.querySelector("button");
    if (button) { button.disabled = true; }
  });
})();
