/* Quiz pages: a countdown on timed attempts (the server enforces the limit; this only shows it
   and submits at zero), and the question editor shows only the fields of the chosen type. */
(function () {
  "use strict";

  var timer = document.querySelector(".countdown[data-seconds]");
  if (timer) {
    var clock = timer.querySelector(".countdown-clock");
    var end = Date.now() + parseInt(timer.getAttribute("data-seconds"), 10) * 1000;
    var form = document.getElementById("quiz-form");
    var sent = false;
    var tick = function () {
      var left = Math.max(0, Math.round((end - Date.now()) / 1000));
      var m = Math.floor(left / 60), s = left % 60;
      clock.textContent = m + ":" + (s < 10 ? "0" : "") + s;
      if (left <= 60) timer.classList.add("countdown-low");
      if (left === 0 && form && !sent) {
        sent = true;
        form.submit();
        return;
      }
      window.setTimeout(tick, 1000);
    };
    tick();
  }

  var quizForm = document.getElementById("quiz-form");
  if (quizForm) {
    quizForm.addEventListener("submit", function () {
      var button = quizForm.querySelector("button[type=submit]");
      if (button) button.disabled = true; // one tap, one submit (the server refuses a second)
    });
  }

  var editor = document.querySelector(".question-editor");
  if (editor) {
    var sections = editor.querySelectorAll("[data-kinds]");
    var show = function () {
      var checked = editor.querySelector("input[name=kind]:checked");
      var kind = checked ? checked.value : "";
      for (var i = 0; i < sections.length; i++) {
        var kinds = sections[i].getAttribute("data-kinds").split(" ");
        sections[i].hidden = kind !== "" && kinds.indexOf(kind) < 0;
      }
    };
    var radios = editor.querySelectorAll("input[name=kind]");
    for (var j = 0; j < radios.length; j++) radios[j].addEventListener("change", show);
    show();
  }
})();
