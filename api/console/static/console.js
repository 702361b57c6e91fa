// smppgw console: refreshes the page's live part (#live) every 2 seconds by fetching the same
// page with ?fragment=live, while the tab is visible and the box is ticked. No framework, no
// build step; the pages work without it (reload by hand).
"use strict";
(function () {
  var live = document.getElementById("live");
  var box = document.getElementById("autorefresh");
  // An action's report (?done=...) is shown once; refreshing must not repeat it.
  if (location.search.indexOf("done=") >= 0 && history.replaceState) {
    history.replaceState(null, "", location.pathname);
  }
  if (!live || !live.dataset.refresh) return;
  var every = parseInt(live.dataset.refresh, 10) || 2000;
  var busy = false;
  function tick() {
    if (busy || document.hidden || (box && !box.checked)) return;
    // Leave the page alone while a person is typing into it.
    var a = document.activeElement;
    if (a && live.contains(a) && a.tagName === "INPUT" && a.type !== "hidden") return;
    busy = true;
    var url = new URL(location.href);
    url.searchParams.set("fragment", "live");
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        live.innerHTML = html;
        document.body.classList.remove("stale");
      })
      .catch(function () {
        document.body.classList.add("stale"); // shown as a banner by the stylesheet
      })
      .finally(function () {
        busy = false;
      });
  }
  setInterval(tick, every);
})();
