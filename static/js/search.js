// Recent searches, kept on this device only (localStorage) and per account, so that people sharing
// a phone do not see each other's; shown as links under the search box, with a button to clear them.
(function () {
  "use strict";
  var box = document.getElementById("recent"), input = document.getElementById("q");
  if (!box || !input) { return; }
  var KEY = "school.recentSearches." + (box.getAttribute("data-user") || "");
  var clear = document.getElementById("recent-clear");
  var recent = [];
  try { recent = JSON.parse(localStorage.getItem(KEY) || "[]"); } catch (e) { recent = []; }
  if (!Array.isArray(recent)) { recent = []; }
  var current = input.value.trim();
  if (current) {
    recent = [current].concat(recent.filter(function (q) { return q !== current; })).slice(0, 8);
    try { localStorage.setItem(KEY, JSON.stringify(recent)); } catch (e) { /* private mode */ }
  }
  recent.filter(function (q) { return typeof q === "string" && q !== current; }).forEach(function (q) {
    var link = document.createElement("a");
    link.className = "tag tag-grey";
    link.href = "/search?q=" + encodeURIComponent(q);
    link.textContent = q;
    box.insertBefore(link, clear);
  });
  box.hidden = box.querySelectorAll("a").length === 0;
  if (clear) {
    clear.addEventListener("click", function () {
      try { localStorage.removeItem(KEY); } catch (e) { /* private mode */ }
      box.querySelectorAll("a").forEach(function (link) { link.remove(); });
      box.hidden = true;
    });
  }
  try { localStorage.removeItem("school.recentSearches"); } catch (e) { /* the old shared key */ }
})();
