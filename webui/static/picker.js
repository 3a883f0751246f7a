// The element picker, inside the sandboxed preview frame (no access to the app's origin).
// A click proposes a CSS selector for the element and tells the parent page by postMessage;
// the parent may send {type: "pa-mark", select: [...], remove: [...]} to outline the matches.
(function () {
  "use strict";
  var hovered = null;
  var marked = [];
  var target = window.location.origin && window.location.origin !== "null" ? window.location.origin : "*";

  function isIdent(name) { return /^-?[A-Za-z_][A-Za-z0-9_-]*$/.test(name); }

  function unique(selector) {
    try { return document.querySelectorAll(selector).length === 1; } catch (e) { return false; }
  }

  function step(node) {
    var part = node.localName;
    var classes = Array.prototype.filter.call(node.classList, isIdent).slice(0, 3);
    if (classes.length) { part += "." + classes.map(CSS.escape).join("."); }
    var parent = node.parentElement;
    if (parent) {
      var same = Array.prototype.filter.call(parent.children, function (c) { return c.localName === node.localName; });
      if (same.length > 1) { part += ":nth-of-type(" + (same.indexOf(node) + 1) + ")"; }
    }
    return part;
  }

  // A stable CSS path: the id if unique, else tag + classes + nth-of-type up to the nearest
  // ancestor with a unique id, as short as still matches this element alone.
  function cssPath(element) {
    if (element.id && isIdent(element.id) && unique("#" + CSS.escape(element.id))) {
      return "#" + CSS.escape(element.id);
    }
    var parts = [];
    var node = element;
    while (node && node.nodeType === 1 && node.localName !== "html") {
      if (node !== element && node.id && isIdent(node.id) && unique("#" + CSS.escape(node.id))) {
        parts.unshift("#" + CSS.escape(node.id));
        return parts.join(" > ");
      }
      parts.unshift(step(node));
      var candidate = parts.join(" > ");
      if (parts.length > 1 && unique(candidate)) { return candidate; }
      node = node.parentElement;
    }
    return parts.join(" > ");
  }

  function outline(el, value) {
    el.style.outline = value;
    el.style.outlineOffset = value ? "-2px" : "";
  }

  document.addEventListener("mouseover", function (event) {
    if (hovered && marked.indexOf(hovered) < 0) { outline(hovered, ""); }
    hovered = event.target;
    if (hovered && hovered.style) { outline(hovered, "2px dashed #d97706"); }
  }, true);

  document.addEventListener("click", function (event) {
    event.preventDefault();
    event.stopPropagation();
    var el = event.target;
    if (!el || el.nodeType !== 1) { return; }
    var text = (el.textContent || "").replace(/\s+/g, " ").trim().slice(0, 80);
    window.parent.postMessage({ type: "pa-pick", selector: cssPath(el), tag: el.localName, text: text }, target);
  }, true);

  document.addEventListener("submit", function (event) { event.preventDefault(); }, true);

  window.addEventListener("message", function (event) {
    if (event.source !== window.parent) { return; }
    var data = event.data;
    if (!data || data.type !== "pa-mark") { return; }
    marked.forEach(function (el) { outline(el, ""); });
    marked = [];
    [["select", "3px solid #16a34a"], ["remove", "3px solid #dc2626"]].forEach(function (pair) {
      (Array.isArray(data[pair[0]]) ? data[pair[0]] : []).forEach(function (selector) {
        if (typeof selector !== "string") { return; }
        try {
          document.querySelectorAll(selector).forEach(function (el) { outline(el, pair[1]); marked.push(el); });
        } catch (e) { /* not a selector the browser knows: the server's preview says why */ }
      });
    });
  });
  document.documentElement.setAttribute("data-picker", "ready");
})();
