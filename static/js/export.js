// Export progress: polls the job's JSON status until the file is ready, then shows its link.
(function () {
  "use strict";
  var root = document.getElementById("export");
  if (!root) { return; }
  var messages = JSON.parse((document.getElementById("js-messages") || {}).textContent || "{}");
  var text = root.querySelector(".export-text");
  var bar = root.querySelector("progress");
  var link = root.querySelector(".export-download");
  var delay = 1000;

  function show(data) {
    if (data.state === "done") {
      text.textContent = messages.ready;
      bar.hidden = true;
      link.href = data.download;
      link.hidden = false;
      return true;
    }
    if (data.state === "failed") {
      text.textContent = data.failed || messages.failed;
      bar.hidden = true;
      return true;
    }
    bar.value = data.progress;
    text.textContent = (messages.preparing || "").split("%(percent)s").join(data.progress);
    return false;
  }

  function poll() {
    fetch(root.dataset.statusUrl, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (!show(data)) { setTimeout(poll, delay); }
      })
      .catch(function () {
        delay = Math.min(delay * 2, 15000);  // a weak network: try again, less often
        setTimeout(poll, delay);
      });
  }
  if (link.hidden && bar && !bar.hidden) { setTimeout(poll, delay); }
}());
