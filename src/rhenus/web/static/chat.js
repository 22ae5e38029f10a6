// Keeps a chat room's timeline scrolled to its newest line as the live stream appends lines
// (no other behaviour: the pages work without it).
(function () {
  "use strict";
  function toBottom() {
    var box = document.getElementById("timeline-box");
    if (box) {
      box.scrollTop = box.scrollHeight;
    }
  }
  document.addEventListener("DOMContentLoaded", toBottom);
  document.addEventListener("htmx:afterSettle", toBottom);
})();
