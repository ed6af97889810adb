// Reloads the QR page (a fresh, short-lived code) before the shown code expires; the holder can pause it
// (WCAG 2.2.1). Without JavaScript the page still works: the "refresh now" link does the same by hand.
(function () {
  "use strict";
  var box = document.getElementById("qr-refresh");
  if (!box) { return; }
  var seconds = parseInt(box.getAttribute("data-seconds"), 10) || 60;
  var timer = window.setTimeout(function () { window.location.reload(); }, seconds * 1000);
  var pause = document.getElementById("qr-pause");
  if (pause) {
    pause.hidden = false;
    pause.addEventListener("click", function () {
      window.clearTimeout(timer);
      pause.hidden = true;
      box.setAttribute("data-paused", "true");
    });
  }
}());
