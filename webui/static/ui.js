// Small progressive enhancements; every page works without them.
// - "n" / "p" jump to the next / previous change on a diff page.
// - "Expand all" opens every collapsed run of unchanged text.
(function () {
  "use strict";
  function changes() {
    return Array.prototype.slice.call(document.querySelectorAll(".diff .change"));
  }
  function current(list) {
    var y = window.scrollY + 80;
    var index = -1;
    list.forEach(function (el, i) { if (el.offsetTop <= y) { index = i; } });
    return index;
  }
  document.addEventListener("keydown", function (event) {
    if (event.target.closest("input, select, textarea") || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    var list = changes();
    if (!list.length || (event.key !== "n" && event.key !== "p")) {
      return;
    }
    var i = current(list);
    var target = event.key === "n" ? Math.min(i + 1, list.length - 1) : Math.max(i - 1, 0);
    list[target].scrollIntoView({ block: "start" });
    history.replaceState(null, "", "#" + list[target].id);
  });
  document.addEventListener("DOMContentLoaded", function () {
    var button = document.querySelector(".expand-all");
    var hidden = document.querySelectorAll("details.hidden-context");
    if (!button || !hidden.length) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      var open = button.dataset.open !== "1";
      hidden.forEach(function (d) { d.open = open; });
      button.dataset.open = open ? "1" : "0";
      button.textContent = open ? "Collapse unchanged text" : "Expand all";
    });
  });
})();
