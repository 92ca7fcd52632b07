// Start the lesson video at ?t=SECONDS (links from subtitle search hits).
(function () {
  "use strict";
  var player = document.querySelector(".player");
  var t = Number(new URLSearchParams(location.search).get("t"));
  if (!player || !(t > 0)) { return; }
  var seek = function () { if (t < (player.duration || Infinity)) { player.currentTime = t; } };
  if (player.readyState >= 1) { seek(); } else { player.addEventListener("loadedmetadata", seek, { once: true }); }
})();
