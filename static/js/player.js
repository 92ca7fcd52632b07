// The lesson player: resume, speed, subtitles, 360p / HD / audio-only listening, and study progress.
//
// Progress is reported honestly as heartbeats ("beats") of a viewing session (school/api/learning.py):
// each beat is the media interval actually played since the last one ({seq, from, to, rate}), or
// seconds of reading ({seq, read}). Beats wait in a localStorage queue until the server answers, so
// study done on a dropped connection is sent later (also from the next page load).
// Plain ES5 for older Android WebViews and the WeChat (X5) browser.
(function () {
  "use strict";
  var root = document.getElementById("lesson-player");
  if (!root) { return; }

  var ds = root.dataset;
  var M = parseJSON((document.getElementById("player-messages") || {}).textContent, {});
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var CSRF = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var PREFS_KEY = "school.player";
  var QUEUE_PREFIX = "school.beats.";
  var QUEUE_MAX_AGE = 30 * 24 * 3600 * 1000;
  var RATES = [0.75, 1, 1.25, 1.5, 2];
  var ACTIVE_MS = 3 * 60 * 1000; // reading counts while the reader did something in the last 3 minutes
  var RETRY_SECONDS = 20;

  var video = byId("lp-video");
  var audio = byId("lp-audio");
  var media = video || audio; // the element playing now
  var duration = Number(ds.duration) || 0;
  var progress = parseJSON(ds.progress, {});
  var prefs = loadJSON(PREFS_KEY, {});
  var hasHigh = !!ds.srcHigh;

  // --- small helpers -------------------------------------------------------------------------

  function byId(id) { return document.getElementById(id); }
  function parseJSON(text, fallback) { try { return text ? JSON.parse(text) : fallback; } catch (e) { return fallback; } }
  function loadJSON(key, fallback) {
    try { return parseJSON(localStorage.getItem(key), fallback) || fallback; } catch (e) { return fallback; }
  }
  function saveJSON(key, value) {
    try {
      if (value === null) { localStorage.removeItem(key); } else { localStorage.setItem(key, JSON.stringify(value)); }
    } catch (e) { /* private mode or full: the queue lives in memory only */ }
  }
  function fmt(text, values) {
    return String(text || "").replace(/%\((\w+)\)s/g, function (all, name) { return values[name]; });
  }
  function round2(x) { return Math.round(x * 100) / 100; }
  function clock(seconds) {
    var s = Math.max(0, Math.floor(seconds)), m = Math.floor(s / 60);
    return m + ":" + (s % 60 < 10 ? "0" : "") + (s % 60);
  }
  function savePrefs() { saveJSON(PREFS_KEY, prefs); }
  function setStatus(text) { var el = byId("lp-status"); if (el && el.textContent !== text) { el.textContent = text; } }

  // POST JSON; done(status, body) with status 0 on a network failure. fetch keepalive lets a beat
  // finish after the page is gone; XMLHttpRequest serves WebViews without fetch.
  function post(url, body, withCsrf, done) {
    var json = JSON.stringify(body);
    var headers = { "Content-Type": "application/json", "Accept": "application/json" };
    if (withCsrf) { headers["X-CSRFToken"] = CSRF; }
    if (window.fetch) {
      window.fetch(url, { method: "POST", credentials: "same-origin", keepalive: true, headers: headers, body: json })
        .then(function (r) {
          return r.json().then(function (d) { done(r.status, d); }, function () { done(r.status, null); });
        }, function () { done(0, null); });
      return;
    }
    var xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    Object.keys(headers).forEach(function (k) { xhr.setRequestHeader(k, headers[k]); });
    xhr.onload = function () { done(xhr.status, parseJSON(xhr.responseText, null)); };
    xhr.onerror = xhr.ontimeout = function () { done(0, null); };
    xhr.send(json);
  }

  // What to do with a beat after an answer: "ok", "drop" (received already, or refused for good),
  // "superseded" (opened on another device), or "retry" (keep it queued).
  function verdict(status, data) {
    if (status >= 200 && status < 300) { return "ok"; }
    var code = data && data.error && data.error.code;
    if (status === 409 && code === "superseded") { return "superseded"; }
    if (status === 0 || status >= 500 || status === 401 || status === 408 || status === 429) { return "retry"; }
    if (status !== 409 && window.console) { window.console.warn("beat refused", status, code, data && data.error); }
    return "drop";
  }

  function beatUrl(id) { return ds.beatUrl.replace("SESSION", id); }

  // --- progress display ------------------------------------------------------------------------

  function showProgress(p) {
    if (!p) { return; }
    var wasCompleted = !!progress.completed;
    progress = p;
    var pct = Math.floor((p.coverage || 0) * 100);
    var watched = byId("lp-watched"), bar = byId("lp-bar");
    if (watched) { watched.textContent = fmt(M.watched, { pct: pct }); }
    if (bar) { bar.value = pct; bar.textContent = pct + "%"; }
    showReading();
    if (p.requirement_met && !p.completed) { setStatus(M.needs_quiz); }
    if (p.completed) {
      byId("lp-done").hidden = false;
      if (byId("lp-confirm")) { byId("lp-confirm").hidden = true; }
      if (!wasCompleted) { setStatus(fmt(M.completed_now, { h: ds.creditHours })); }
    }
  }

  // --- viewing session and its beats -------------------------------------------------------------

  var session = null; // the start answer: {session_id, kind, beat_seconds, ...}
  var starting = false;
  var stopped = false; // superseded: nothing is sent until the member continues here
  var seq = 0;
  var queue = []; // this session's beats not yet answered, in seq order
  var inFlight = null;
  var beaconed = 0; // the highest seq already handed to sendBeacon
  var beatMs = 12000;

  function queueKey(id) { return QUEUE_PREFIX + id; }
  function saveQueue() {
    if (session) { saveJSON(queueKey(session.session_id), queue.length ? { at: Date.now(), beats: queue } : null); }
  }

  function enqueue(beat, hiding) {
    if (!session || stopped) { return; }
    seq += 1;
    beat.seq = seq;
    queue.push(beat);
    saveQueue();
    if (hiding) { beaconAll(); } else { pump(); }
  }

  // Send the queue head, one at a time: the server refuses a seq lower than one it has seen.
  // A session taken over by another device still sends what it queued before (that time counts).
  function pump() {
    if (inFlight || !session || !queue.length) { return; }
    var s = session, beat = queue[0];
    inFlight = beat;
    post(beatUrl(s.session_id), beat, false, function (status, data) {
      inFlight = null;
      if (s !== session) { return; }
      var v = verdict(status, data);
      if (v === "retry") { setStatus(M.offline); return; }
      if (queue[0] === beat) { queue.shift(); }
      saveQueue();
      if (v === "superseded") { stopped = true; interval = null; queue = []; saveQueue(); onSuperseded(); return; }
      if (v === "ok") {
        if (byId("lp-status").textContent === M.offline) { setStatus(""); }
        showProgress(data);
        if (data && data.superseded) { onSuperseded(); }
      }
      pump();
    });
  }

  // The page is being hidden or left: sendBeacon survives that. Beats stay queued until answered
  // (a copy the server already has is answered stale_seq and dropped).
  function beaconAll() {
    if (!session || !navigator.sendBeacon) { pump(); return; }
    var url = beatUrl(session.session_id);
    queue.forEach(function (beat) {
      if (beat !== inFlight && beat.seq > beaconed) {
        beaconed = beat.seq;
        navigator.sendBeacon(url, new Blob([JSON.stringify(beat)], { type: "application/json" }));
      }
    });
  }

  // Beats of earlier sessions (a page closed offline) go first, each session in seq order.
  var flushing = false;
  function flushOld(done) {
    if (flushing) { done(); return; }
    var keys = [], i, key;
    try {
      for (i = 0; i < localStorage.length; i++) {
        key = localStorage.key(i);
        if (key && key.indexOf(QUEUE_PREFIX) === 0 && !(session && key === queueKey(session.session_id))) {
          keys.push(key);
        }
      }
    } catch (e) { keys = []; }
    var left = keys.length;
    if (!left) { done(); return; }
    flushing = true;
    var finish = function () { left -= 1; if (left === 0) { flushing = false; done(); } };
    keys.forEach(function (k) {
      var saved = loadJSON(k, null);
      if (!saved || !saved.beats || Date.now() - (saved.at || 0) > QUEUE_MAX_AGE) { saveJSON(k, null); finish(); return; }
      sendSaved(k.slice(QUEUE_PREFIX.length), saved.beats, finish);
    });
  }
  function sendSaved(id, beats, done) {
    if (!beats.length) { saveJSON(queueKey(id), null); done(); return; }
    post(beatUrl(id), beats[0], false, function (status, data) {
      var v = verdict(status, data);
      if (v === "retry") { done(); return; }
      if (v === "superseded") { beats.length = 0; } else { beats.shift(); }
      saveJSON(queueKey(id), beats.length ? { at: Date.now(), beats: beats } : null);
      sendSaved(id, beats, done);
    });
  }

  function startSession() {
    if (starting || session) { return; }
    starting = true;
    post(ds.startUrl, {}, true, function (status, data) {
      starting = false;
      if (status !== 201 || !data || !data.session_id) {
        if (verdict(status, data) === "retry") { setStatus(M.offline); }
        return;
      }
      session = data;
      seq = 0;
      beaconed = 0;
      queue = [];
      stopped = false;
      beatMs = (data.beat_seconds || 12) * 1000;
      if (byId("lp-status").textContent === M.offline) { setStatus(""); }
      showProgress(data);
      if (media && !media.paused && !media.ended) { startInterval(); }
    });
  }

  function onSuperseded() {
    if (!stopped) { follow(); endInterval(); } // what was played until now may still count
    stopped = true;
    interval = null;
    byId("lp-superseded").hidden = false;
  }

  byId("lp-resume-here").addEventListener("click", function () {
    byId("lp-superseded").hidden = true;
    session = null;
    stopped = false;
    startSession();
  });

  // --- watching: the interval actually played ----------------------------------------------------

  var interval = null; // {from, to, rate, seen: wall-clock ms of the last playhead step, began}

  function startInterval() {
    if (!media || !session || stopped) { interval = null; return; }
    var now = Date.now();
    interval = { from: media.currentTime, to: media.currentTime, rate: media.playbackRate, seen: now, began: now };
  }

  // Take the playhead into the interval when it moved forward the way playing moves it; a jump
  // (a seek the browser did not announce) is not playing.
  function follow() {
    if (!interval) { return false; }
    var t = media.currentTime, now = Date.now();
    var allowed = (now - interval.seen) / 1000 * interval.rate * 1.5 + 1;
    if (t >= interval.to - 0.05 && t - interval.to <= allowed) {
      interval.to = Math.max(interval.to, t);
      interval.seen = now;
      return true;
    }
    return false;
  }

  // End the interval and report it.
  function endInterval(hiding) {
    var done = interval;
    interval = null;
    if (done && done.to - done.from > 0.05 && session && session.kind === "watch") {
      enqueue({ from: round2(done.from), to: round2(done.to), rate: done.rate }, hiding);
    } else if (hiding) {
      beaconAll();
    }
  }

  function playing() { return media && !media.paused && !media.ended; }

  function onMediaEvent(event) {
    if (event.target !== media) { return; } // the element we switched away from
    switch (event.type) {
    case "playing":
      if (!interval) { startInterval(); }
      break;
    case "timeupdate":
      if (!interval || media.seeking) { return; }
      if (!follow()) { endInterval(); if (playing()) { startInterval(); } return; }
      if (Date.now() - interval.began >= beatMs) { endInterval(); startInterval(); }
      break;
    case "seeking":
      endInterval(); // up to where the playhead was before the seek
      break;
    case "seeked":
      if (playing()) { startInterval(); }
      break;
    case "pause":
    case "ended":
      follow();
      endInterval();
      break;
    case "ratechange":
      follow();
      endInterval();
      if (playing()) { startInterval(); }
      break;
    }
    if (event.type === "play" || event.type === "pause" || event.type === "ended") { mediaSessionState(); }
  }

  function hiding() {
    if (session && session.kind === "read") { sendReading(true); return; }
    follow();
    endInterval(true);
    if (playing()) { startInterval(); } // listening with the screen off goes on
  }

  // --- reading: seconds the page is seen by someone active ---------------------------------------

  var readPending = 0, lastTick = Date.now(), lastActive = Date.now();

  function queuedReading() {
    var total = readPending;
    queue.forEach(function (b) { total += b.read || 0; });
    return total;
  }
  function showReading() {
    var el = byId("lp-read");
    if (el) {
      el.textContent = fmt(M.read, {
        time: clock((progress.read_seconds || 0) + queuedReading()),
        minutes: String(Math.round(Number(ds.readMinimum) / 6) / 10)
      });
    }
  }
  function sendReading(hiding) {
    if (readPending >= 0.5) {
      var seconds = Math.round(readPending * 10) / 10;
      readPending = 0;
      enqueue({ read: seconds }, hiding);
    } else if (hiding) {
      beaconAll();
    }
  }
  function readTick() {
    var now = Date.now(), step = Math.min(now - lastTick, 2000);
    lastTick = now;
    if (!session || session.kind !== "read" || stopped || progress.completed) { return; }
    if (document.visibilityState === "visible" && now - lastActive < ACTIVE_MS) {
      readPending += step / 1000;
      showReading();
    }
    if (readPending * 1000 >= beatMs) { sendReading(); }
  }
  ["scroll", "touchstart", "keydown", "pointerdown", "wheel"].forEach(function (type) {
    window.addEventListener(type, function () { lastActive = Date.now(); }, { passive: true });
  });

  // --- the player's own controls ------------------------------------------------------------------

  function goodNetwork() {
    var c = navigator.connection || navigator.mozConnection || navigator.webkitConnection;
    return !!c && !c.saveData && c.effectiveType === "4g";
  }
  function videoSource() {
    var q = prefs.quality || "auto";
    return hasHigh && (q === "high" || (q === "auto" && goodNetwork())) ? ds.srcHigh : ds.srcLow;
  }
  function currentRate() { return RATES.indexOf(prefs.rate) >= 0 ? prefs.rate : 1; }

  function whenReady(el, then) {
    if (el.readyState >= 1) { then(); return; }
    var once = function () { el.removeEventListener("loadedmetadata", once); then(); };
    el.addEventListener("loadedmetadata", once);
  }
  function seekTo(el, t) {
    whenReady(el, function () {
      var end = el.duration || duration;
      if (t > 0 && (!end || t < end)) { try { el.currentTime = t; } catch (e) { /* not seekable yet */ } }
    });
  }
  function tryPlay(el) {
    var p = el.play();
    if (p && p.catch) { p.catch(function () { /* autoplay refused: the member presses play */ }); }
  }

  // Move to another element or source, keeping the position and whether it was playing.
  function switchTo(target, src) {
    var from = media, wasPlaying = playing(), at = from.currentTime || 0;
    if (from === target && target.getAttribute("src") === src) { return; }
    follow();
    endInterval();
    media = target; // events of the old element are ignored from here on
    if (from !== target) { from.pause(); }
    if (target.getAttribute("src") !== src) { target.preload = "metadata"; target.setAttribute("src", src); target.load(); }
    target.defaultPlaybackRate = target.playbackRate = currentRate();
    seekTo(target, at);
    whenReady(target, function () { if (wasPlaying && media === target) { tryPlay(target); } });
    mediaSessionHandlers();
  }

  function setListening(on) {
    if (!video || !audio || !ds.srcAudio) { return; }
    on = !!on;
    switchTo(on ? audio : video, on ? ds.srcAudio : videoSource());
    video.hidden = on;
    byId("lp-listen").hidden = !on;
    byId("lp-listen-btn").setAttribute("aria-pressed", String(on));
    if (byId("lp-quality")) { byId("lp-quality").hidden = on; }
    if (byId("lp-subs")) { byId("lp-subs").hidden = on; }
  }

  function setQuality(q) {
    prefs.quality = q;
    savePrefs();
    var buttons = root.querySelectorAll("[data-quality]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].setAttribute("aria-pressed", String(buttons[i].getAttribute("data-quality") === q));
    }
    if (video && media === video) { switchTo(video, videoSource()); }
  }

  function showSpeed() {
    var rate = currentRate(), button = byId("lp-speed");
    button.textContent = fmt(M.speed_short, { rate: rate });
    button.setAttribute("aria-label", fmt(M.speed, { rate: rate }));
  }
  function setSubtitles(on) {
    var i, tracks = video ? video.textTracks : [];
    for (i = 0; i < tracks.length; i++) { tracks[i].mode = on && i === 0 ? "showing" : "hidden"; }
    if (byId("lp-subs")) { byId("lp-subs").setAttribute("aria-pressed", String(on)); }
  }

  // --- lock screen and headset controls (Media Session) ------------------------------------------

  function mediaSessionHandlers() {
    if (!("mediaSession" in navigator)) { return; }
    var ms = navigator.mediaSession;
    try {
      if (window.MediaMetadata && !ms.metadata) {
        ms.metadata = new window.MediaMetadata({
          title: ds.title, artist: ds.courseTitle, album: M.album || "",
          artwork: ds.poster ? [{ src: ds.poster, sizes: "640x360", type: "image/jpeg" }] : []
        });
      }
    } catch (e) { /* older implementations */ }
    var handlers = {
      play: function () { tryPlay(media); },
      pause: function () { media.pause(); },
      seekbackward: function (d) { media.currentTime = Math.max(0, media.currentTime - ((d && d.seekOffset) || 10)); },
      seekforward: function (d) { media.currentTime = Math.min(media.duration || 0, media.currentTime + ((d && d.seekOffset) || 10)); },
      seekto: function (d) { if (d && typeof d.seekTime === "number") { media.currentTime = d.seekTime; } }
    };
    Object.keys(handlers).forEach(function (action) {
      try { ms.setActionHandler(action, handlers[action]); } catch (e) { /* action not supported */ }
    });
  }
  function mediaSessionState() {
    if ("mediaSession" in navigator) {
      try { navigator.mediaSession.playbackState = playing() ? "playing" : "paused"; } catch (e) { /* ignore */ }
    }
  }

  // --- wiring -------------------------------------------------------------------------------------

  if (media) {
    ["playing", "play", "timeupdate", "seeking", "seeked", "pause", "ended", "ratechange"].forEach(function (type) {
      if (video) { video.addEventListener(type, onMediaEvent); }
      if (audio) { audio.addEventListener(type, onMediaEvent); }
    });

    // Resume: ?t= from a search hit first, then where the server says the member stopped (from the
    // start again when that was the very end).
    var linked = /[?&]t=(\d+(?:\.\d+)?)/.exec(location.search);
    var resumeAt = linked ? Number(linked[1]) : Number(progress.position) || 0;
    if (!linked && duration && resumeAt >= duration - Math.min(5, duration * 0.05)) { resumeAt = 0; }

    byId("lp-controls").hidden = false;
    media.defaultPlaybackRate = media.playbackRate = currentRate();
    showSpeed();
    byId("lp-speed").addEventListener("click", function () {
      prefs.rate = RATES[(RATES.indexOf(currentRate()) + 1) % RATES.length];
      savePrefs();
      media.defaultPlaybackRate = media.playbackRate = prefs.rate;
      showSpeed();
    });

    if (video) {
      if (byId("lp-subs")) {
        setSubtitles(prefs.subtitles !== false);
        byId("lp-subs").addEventListener("click", function () {
          prefs.subtitles = byId("lp-subs").getAttribute("aria-pressed") !== "true";
          savePrefs();
          setSubtitles(prefs.subtitles);
        });
      }
      if (byId("lp-quality")) {
        setQuality(prefs.quality || "auto");
        byId("lp-quality").addEventListener("click", function (e) {
          var q = e.target && e.target.getAttribute && e.target.getAttribute("data-quality");
          if (q) { setQuality(q); }
        });
      }
      if (byId("lp-listen-btn")) {
        byId("lp-listen-btn").addEventListener("click", function () {
          prefs.listen = media !== audio;
          savePrefs();
          setListening(prefs.listen);
        });
        if (prefs.listen) { setListening(true); }
      }
    }
    seekTo(media, resumeAt);
    mediaSessionHandlers();
  }

  var confirm = byId("lp-confirm");
  if (confirm) {
    confirm.addEventListener("click", function () {
      confirm.disabled = true;
      post(ds.finishedUrl, {}, true, function (status, data) {
        confirm.disabled = false;
        if (status === 200) {
          showProgress(data);
          byId("lp-confirmed").textContent = byId("lp-status").textContent;
          byId("lp-confirmed").hidden = !byId("lp-confirmed").textContent;
        } else { setStatus((data && data.error && data.error.message) || M.failed); }
      });
    });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") { hiding(); } else { lastActive = Date.now(); pump(); }
  });
  window.addEventListener("pagehide", hiding);
  window.addEventListener("online", function () { flushOld(function () {}); pump(); startSession(); });
  var ticks = 0;
  setInterval(function () {
    readTick();
    ticks += 1;
    if (ticks % RETRY_SECONDS === 0) { flushOld(function () {}); pump(); startSession(); }
  }, 1000);

  showReading();
  // Earlier sessions' queued beats first: opening this session ends those of this lesson.
  var started = false;
  var begin = function () { if (!started) { started = true; startSession(); } };
  flushOld(begin);
  setTimeout(begin, 5000);
})();
