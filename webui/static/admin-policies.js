// The policy editor (admin/policy_edit.html) and the request poller (admin/policy_detail.html).
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="csrf-token"]');
  var token = csrf ? csrf.getAttribute("content") : "";

  function editor(form) {
    var frame = document.getElementById("page-frame");
    var select = document.getElementById("select");
    var remove = document.getElementById("remove");
    var picked = document.getElementById("picked");
    var stats = document.getElementById("preview-stats");
    var warnings = document.getElementById("preview-warnings");
    var text = document.getElementById("preview-text");
    var rangeStart = null;
    var timer = null;
    var sequence = 0;

    function lines(area) {
      return area.value.split("\n").map(function (l) { return l.trim(); }).filter(Boolean);
    }

    function cssOnly(area) {
      return lines(area).filter(function (l) { return l.charAt(0) !== "{"; });
    }

    function mark() {
      if (frame.contentWindow) {
        frame.contentWindow.postMessage({ type: "pa-mark", select: cssOnly(select), remove: cssOnly(remove) }, "*");
      }
    }

    function show(data) {
      stats.textContent = "";
      warnings.textContent = "";
      if (data.ok) {
        stats.textContent = data.words + " words (extracted in " + data.server_ms + " ms)";
      } else {
        var error = document.createElement("span");
        error.className = "preview-error";
        error.textContent = data.error || "Nothing extracted.";
        stats.appendChild(error);
      }
      (data.warnings || []).forEach(function (w) {
        var li = document.createElement("li");
        li.textContent = w;
        warnings.appendChild(li);
      });
      text.innerHTML = data.html || "";  // Markdown rendered and sanitised (nh3) by the server
      form.setAttribute("data-preview", "fresh");
    }

    function refresh() {
      var mine = ++sequence;
      form.setAttribute("data-preview", "loading");
      fetch(form.getAttribute("data-extract-url"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": token },
        body: JSON.stringify({ select: select.value, remove: remove.value })
      }).then(function (r) { return r.json(); }).then(function (data) {
        if (mine === sequence) { show(data); mark(); }
      }).catch(function () {
        stats.textContent = "The preview could not be updated; try again.";
      });
    }

    function soon() {
      clearTimeout(timer);
      timer = setTimeout(refresh, 250);
    }

    function add(area, line) {
      area.value = (area.value.trim() ? area.value.replace(/\s+$/, "") + "\n" : "") + line;
      refresh();
    }

    function mode() {
      var checked = form.querySelector('input[name="pick"]:checked');
      return checked ? checked.value : "select";
    }

    window.addEventListener("message", function (event) {
      if (event.source !== frame.contentWindow) { return; }
      var data = event.data;
      if (!data || data.type !== "pa-pick" || typeof data.selector !== "string" || data.selector.length > 2000) { return; }
      var how = mode();
      picked.textContent = "Picked <" + String(data.tag || "") + "> " + data.selector;
      if (how === "remove") { add(remove, data.selector); }
      else if (how === "start") {
        rangeStart = data.selector;
        picked.textContent += " — now pick the range's end";
        var end = form.querySelector('input[name="pick"][value="end"]');
        if (end) { end.checked = true; }
      } else if (how === "end") {
        if (!rangeStart) { picked.textContent = "Pick the range's start first."; return; }
        add(select, JSON.stringify({ startBefore: rangeStart, endAfter: data.selector }));
        rangeStart = null;
      } else { add(select, data.selector); }
    });
    select.addEventListener("input", soon);
    remove.addEventListener("input", soon);
    frame.addEventListener("load", mark);
  }

  function poller(items) {
    function poll() {
      var waiting = items.filter(function (li) { return li.getAttribute("data-status") !== "done"; });
      if (!waiting.length) { return; }
      Promise.all(waiting.map(function (li) {
        return fetch(li.getAttribute("data-request-url"), { credentials: "same-origin" })
          .then(function (r) { return r.json(); })
          .then(function (data) {
            li.setAttribute("data-status", data.status);
            if (data.status === "done") { return true; }
            li.querySelector(".request-outcome").textContent = data.status + "…";
            return false;
          });
      })).then(function (done) {
        if (done.some(Boolean)) { window.location.reload(); } else { setTimeout(poll, 700); }
      }).catch(function () { setTimeout(poll, 3000); });
    }
    setTimeout(poll, 500);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("policy-form");
    if (form) { editor(form); }
    var items = Array.prototype.slice.call(document.querySelectorAll("li.request[data-request-url]"));
    if (items.length) { poller(items); }
  });
})();
