// The "copy" buttons beside shortened hashes: put the whole hash on the clipboard. The
// clipboard API needs a secure context (https, or the node on localhost); elsewhere the text
// is copied through a selected, hidden text area instead.
"use strict";
(function () {
  function fallback(text) {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    const done = document.execCommand("copy");
    area.remove();
    return done;
  }
  function said(button, text) {
    button.textContent = text;
    setTimeout(function () { button.textContent = "copy"; }, 1500);
  }
  document.addEventListener("click", function (event) {
    const button = event.target.closest("button.copy");
    if (!button) return;
    const text = button.dataset.copy;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { said(button, "copied"); },
        function () { said(button, fallback(text) ? "copied" : "select the link's title"); }
      );
    } else {
      said(button, fallback(text) ? "copied" : "copy failed");
    }
  });
})();
