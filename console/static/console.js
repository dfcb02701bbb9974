// sandbox0d console: relative times, times in the viewer's zone, and the
// live transcript. Pages work without it; it only adds what a server
// cannot know (the viewer's zone, the passing time, new events).
"use strict";
(function () {
  document.documentElement.classList.add("js");

  function relative(iso) {
    var d = (Date.parse(iso) - Date.now()) / 1000, future = d > 0, s;
    d = Math.abs(d);
    if (d < 45) return "just now";
    if (d < 3600) s = Math.round(d / 60) + " min";
    else if (d < 86400) { var h = Math.floor(d / 3600), m = Math.floor((d % 3600) / 60); s = h + " h" + (m ? " " + m + " min" : ""); }
    else { var days = Math.floor(d / 86400), hh = Math.floor((d % 86400) / 3600); s = days + " d" + (hh && days < 10 ? " " + hh + " h" : ""); }
    return future ? "in " + s : s + " ago";
  }
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { zone = ""; }
  var fmt = null;
  try {
    fmt = new Intl.DateTimeFormat(undefined, { weekday: "short", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", timeZoneName: "short" });
  } catch (e) { fmt = null; }

  function refresh(root) {
    var rels = root.querySelectorAll("[data-rel]");
    for (var i = 0; i < rels.length; i++) rels[i].textContent = relative(rels[i].getAttribute("data-rel"));
    if (!fmt) return;
    var vs = root.querySelectorAll("[data-viewer]");
    for (var j = 0; j < vs.length; j++) {
      var el = vs[j];
      if (el.textContent) continue;
      if (el.getAttribute("data-zone") === zone) continue; // the page already shows this zone
      var t = new Date(el.getAttribute("data-viewer"));
      el.textContent = fmt.format(t);
    }
  }

  function live() {
    var box = document.getElementById("transcript");
    if (!box || !box.dataset.stream || !window.EventSource) return;
    var state = document.getElementById("stream-state");
    var es = new EventSource(box.dataset.stream);
    function nearBottom() { return window.innerHeight + window.scrollY >= document.body.scrollHeight - 200; }
    es.addEventListener("transcript", function (e) {
      var follow = nearBottom();
      var empty = document.getElementById("no-events");
      if (empty) empty.remove();
      var id = e.lastEventId;
      if (id && document.getElementById("ev-" + id)) return; // already shown
      box.insertAdjacentHTML("beforeend", e.data);
      refresh(box.lastElementChild || box);
      if (follow) box.lastElementChild.scrollIntoView({ block: "end" });
    });
    es.addEventListener("problem", function (e) {
      state.insertAdjacentHTML("beforeend", e.data);
    });
    es.addEventListener("end", function (e) {
      es.close();
      var summary = document.getElementById("summary");
      if (summary && e.data) { summary.outerHTML = e.data; refresh(document.getElementById("summary")); }
      var now = document.getElementById("summary");
      var ib = document.getElementById("interrupt");
      if (ib && (!now || now.getAttribute("data-status") !== "running")) ib.closest("form").remove();
      state.textContent = "The turn is over: the transcript is complete until the next message.";
    });
    es.onerror = function () {
      if (es.readyState === EventSource.CLOSED) state.textContent = "The live transcript was disconnected; reload the page to follow again.";
      else state.textContent = "Reconnecting to the live transcript…";
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    var vz = document.getElementById("viewer-zone");
    if (vz) vz.textContent = zone || "unknown";
    refresh(document);
    setInterval(function () { refresh(document); }, 30000);
    live();
  });
})();
