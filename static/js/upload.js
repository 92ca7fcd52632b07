// Resumable chunked uploads with a progress bar, then live transcode progress.
// Protocol (school/media/service.py): POST /api/v1/uploads -> PUT chunks at ?offset= -> complete.
// A dropped connection is retried with back-off from the offset the server reports.
(function () {
  "use strict";
  var messages = JSON.parse((document.getElementById("js-messages") || {}).textContent || "{}");
  // Reloading after an upload would drop text typed into the lesson form: track unsaved edits.
  var dirty = false;
  Array.prototype.forEach.call(document.querySelectorAll("form.card"), function (form) {
    form.addEventListener("input", function () { dirty = true; });
    form.addEventListener("submit", function () { dirty = false; });
  });
  function reloadWhenSafe(text) {
    if (dirty) { text.textContent = t("saved_reload"); return; }
    setTimeout(function () { location.reload(); }, 700);
  }
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function t(key, values) {
    var text = messages[key] || key;
    Object.keys(values || {}).forEach(function (name) {
      text = text.split("%(" + name + ")s").join(values[name]);
    });
    return text.split("%%").join("%");
  }

  function humanSize(n) {
    var units = ["B", "KB", "MB", "GB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
  }

  function api(method, url, body, isJson) {
    var headers = { "X-CSRFToken": csrf, "Accept": "application/json" };
    if (isJson) { headers["Content-Type"] = "application/json"; body = JSON.stringify(body); }
    else if (body) { headers["Content-Type"] = "application/octet-stream"; }
    return fetch(url, { method: method, headers: headers, body: body, credentials: "same-origin" })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (!response.ok) {
            var error = new Error((data.error && data.error.message) || response.statusText);
            error.status = response.status; error.data = data;
            throw error;
          }
          return data;
        });
      });
  }

  function Uploader(root) {
    this.root = root;
    this.input = root.querySelector("input[type=file]");
    this.status = root.querySelector(".upload-status");
    this.bar = root.querySelector("progress");
    this.text = root.querySelector(".upload-text");
    this.name = root.querySelector(".upload-name");
    this.retryButton = root.querySelector(".upload-retry");
    this.input.addEventListener("change", this.pick.bind(this));
    this.retryButton.addEventListener("click", this.resume.bind(this));
  }

  Uploader.prototype.show = function (text, percent, isError) {
    this.status.hidden = false;
    this.text.textContent = text;
    this.text.classList.toggle("field-error", !!isError);
    this.text.classList.toggle("muted", !isError);
    if (percent !== undefined) { this.bar.value = percent; }
  };

  Uploader.prototype.pick = function () {
    var file = this.input.files[0];
    if (!file) { return; }
    this.file = file;
    this.name.textContent = file.name + " · " + humanSize(file.size);
    var max = Number(this.root.dataset.maxBytes);
    var extension = (file.name.match(/\.[^.]+$/) || [""])[0].toLowerCase();
    var allowed = this.root.dataset.accept.split(",").filter(function (a) { return a.charAt(0) === "."; });
    // Checked here so nobody waits for a 2 GB upload to hear it was refused; the server checks again.
    if (file.size > max) {
      return this.show(t("too_large", { size: humanSize(file.size), limit: humanSize(max) }), 0, true);
    }
    if (allowed.indexOf(extension) < 0) {
      var kinds = allowed.map(function (a) { return a.slice(1).toUpperCase(); }).join("、");
      return this.show(t("wrong_kind", { kinds: kinds }), 0, true);
    }
    var self = this, root = this.root, body = { purpose: root.dataset.upload, filename: file.name, size: file.size };
    if (root.dataset.lessonId) { body.lesson_id = Number(root.dataset.lessonId); }
    if (root.dataset.courseId) { body.course_id = Number(root.dataset.courseId); }
    this.retryButton.hidden = true;
    this.bar.hidden = false;
    this.show(t("uploading", { pct: 0 }), 0);
    api("POST", "/api/v1/uploads", body, true).then(function (upload) {
      self.upload = upload; self.attempt = 0; self.send(upload.offset);
    }).catch(function (error) { self.show(t("failed", { reason: error.message }), 0, true); });
  };

  Uploader.prototype.send = function (offset) {
    var self = this, upload = this.upload, file = this.file;
    if (offset >= file.size) { return this.complete(); }
    var end = Math.min(offset + upload.chunk_size, file.size);
    api("PUT", "/api/v1/uploads/" + upload.id + "?offset=" + offset, file.slice(offset, end), false)
      .then(function (state) {
        self.attempt = 0;
        var percent = Math.floor(state.offset * 100 / file.size);
        self.show(t("uploading", { pct: percent }), percent);
        self.send(state.offset);
      })
      .catch(function (error) {
        if (error.status === 409 || !error.status || error.status >= 500) { return self.retry(); }
        self.show(t("failed", { reason: error.message }), undefined, true);
      });
  };

  Uploader.prototype.retry = function () {
    var self = this;
    this.attempt += 1;
    if (this.attempt > 8) { this.retryButton.hidden = false; return; }  // the loop stops here
    var wait = Math.min(30, Math.pow(2, this.attempt));
    this.show(t("paused", { s: wait }), undefined, true);
    setTimeout(function () { self.resume(); }, wait * 1000);
  };

  Uploader.prototype.resume = function () {
    // Ask where the upload stands: the last chunk may or may not have arrived.
    var self = this;
    if (!this.upload) { return; }  // refused or finished: nothing to resume
    this.retryButton.hidden = true;
    api("GET", "/api/v1/uploads/" + this.upload.id).then(function (state) { self.send(state.offset); })
      .catch(function (error) {
        if (!error.status || error.status >= 500) { return self.retry(); }
        self.show(t("failed", { reason: error.message }), undefined, true);
      });
  };

  Uploader.prototype.complete = function () {
    var self = this;
    this.show(t("checking"), 100);
    api("POST", "/api/v1/uploads/" + this.upload.id + "/complete", null, false).then(function (result) {
      self.upload = null;  // finished: nothing left to resume
      if (result.job_id) { watchJob(result.job_id, self.bar, self.text); }
      else { self.show(t("done"), 100); reloadWhenSafe(self.text); }
    }).catch(function (error) {
      if (!error.status || error.status >= 500) { return self.retry(); }
      self.upload = null;
      self.bar.hidden = true;
      self.show(t("failed", { reason: error.message }), 0, true);
    });
  };

  function watchJob(jobId, bar, text) {
    api("GET", "/api/v1/jobs/" + jobId).then(function (job) {
      bar.value = job.progress;
      if (job.state === "done") { text.textContent = t("ready"); return reloadWhenSafe(text); }
      if (job.state === "failed") {
        bar.hidden = true;
        text.textContent = t("job_failed", { reason: job.message || "" });
        text.classList.add("field-error");
        text.classList.remove("muted");
        return;
      }
      text.textContent = t("transcoding", { pct: job.progress });
      setTimeout(function () { watchJob(jobId, bar, text); }, 1500);
    }).catch(function () { setTimeout(function () { watchJob(jobId, bar, text); }, 5000); });
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-upload]"), function (el) { new Uploader(el); });
  Array.prototype.forEach.call(document.querySelectorAll(".job[data-job-id]"), function (el) {
    if (el.dataset.jobId) { watchJob(el.dataset.jobId, el.querySelector("progress"), el.querySelector(".job-text")); }
  });
})();
