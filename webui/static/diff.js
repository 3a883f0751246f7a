// The diff page's formatting toggle: shows or hides formatting-only changes in place.
// Without JavaScript the toggle is a link (?formatting=show / hide) and works the same.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var toggle = document.querySelector(".formatting-toggle");
    var diff = document.querySelector(".diff");
    if (!toggle || !diff) {
      return;
    }
    toggle.setAttribute("role", "button");
    toggle.addEventListener("click", function (event) {
      event.preventDefault();
      var show = diff.classList.toggle("hide-formatting") === false;
      toggle.setAttribute("aria-pressed", show ? "true" : "false");
      toggle.textContent = show ? toggle.dataset.hide : toggle.dataset.show;
      var url = new URL(window.location.href);
      url.searchParams.set("formatting", show ? "show" : "hide");
      history.replaceState(null, "", url.toString());
      document.querySelectorAll("input[name=formatting]").forEach(function (input) {
        input.value = show ? "show" : "hide";
      });
    });
  });
})();
