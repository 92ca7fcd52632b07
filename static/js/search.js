// Recent searches, kept on this device only (localStorage), shown as links under the search box.
(function () {
  "use strict";
  var KEY = "school.recentSearches", box = document.getElementById("recent");
  var input = document.getElementById("q");
  if (!box || !input) { return; }
  var recent = [];
  try { recent = JSON.parse(localStorage.getItem(KEY) || "[]"); } catch (e) { recent = []; }
  var current = input.value.trim();
  if (current) {
    recent = [current].concat(recent.filter(function (q) { return q !== current; })).slice(0, 8);
    try { localStorage.setItem(KEY, JSON.stringify(recent)); } catch (e) { /* private mode */ }
  }
  recent.filter(function (q) { return q !== current; }).forEach(function (q) {
    var link = document.createElement("a");
    link.className = "tag tag-grey";
    link.href = "/search?q=" + encodeURIComponent(q);
    link.textContent = q;
    box.appendChild(link);
  });
  box.hidden = box.querySelectorAll("a").length === 0;
})();
