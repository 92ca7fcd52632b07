// Attendee lists on the meeting forms: find by name or phone, select all shown, count ticked.
// Without JS the plain checkboxes still work.
(function () {
  "use strict";
  var boxes = document.querySelectorAll("[data-attendees]");
  Array.prototype.forEach.call(boxes, function (box) {
    var tools = box.querySelector("[data-js-only]");
    if (!tools) { return; }
    tools.hidden = false;
    var search = box.querySelector("[data-attendee-search]");
    var all = box.querySelector("[data-select-all]");
    var count = box.querySelector("[data-ticked-count]");
    var items = Array.prototype.slice.call(box.querySelectorAll("li[data-search]"));
    var template = count.getAttribute("data-template");

    function inputs(shownOnly) {
      return items.filter(function (li) { return !shownOnly || !li.hidden; })
        .map(function (li) { return li.querySelector("input[name=attendees]"); });
    }
    function update() {
      var ticked = inputs(false).filter(function (c) { return c.checked; }).length;
      count.textContent = template.replace("%(n)s", String(ticked));
      var shown = inputs(true);
      all.checked = shown.length > 0 && shown.every(function (c) { return c.checked; });
    }
    search.addEventListener("input", function () {
      var q = search.value.trim().toLowerCase();
      items.forEach(function (li) {
        li.hidden = q !== "" && li.getAttribute("data-search").toLowerCase().indexOf(q) < 0;
      });
      update();
    });
    all.addEventListener("change", function () {
      inputs(true).forEach(function (c) { c.checked = all.checked; });
      update();
    });
    box.addEventListener("change", function (event) {
      if (event.target.name === "attendees") { update(); }
    });
    update();
  });
})();
