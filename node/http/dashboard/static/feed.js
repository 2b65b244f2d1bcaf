// Refreshes the live feed table from feed.json every 2 seconds. Text goes in through
// textContent only, so nothing a member submitted can become markup, and through visible(),
// so control, bidi and invisible format characters show as <U+202E> (as the templates do).
"use strict";
(function () {
  const state = document.getElementById("feed-state");
  const body = document.querySelector("#feed tbody");
  if (!state || !body) return;
  const url = state.dataset.url;
  const searchUrl = state.dataset.search;

  // The set of node/dashboard/app.py's _INVISIBLE.
  const invisible =
    /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]|\udb40[\udc00-\udc7f]/g;
  function visible(text) {
    return String(text).replace(invisible, function (c) {
      const code = c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
      return "\u27e8U+" + code + "\u27e9";
    });
  }
  function when(ms) {
    if (!ms) return "never";
    return new Date(ms).toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }
  function duration(ms) {
    ms = Math.max(0, ms);
    if (ms < 1000) return ms.toFixed(0) + " ms";
    if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
    if (ms < 3600000) return (ms / 60000).toFixed(0) + " min";
    if (ms < 86400000) return (ms / 3600000).toFixed(1) + " h";
    return (ms / 86400000).toFixed(1) + " days";
  }
  function cell(row, text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = visible(text);
    row.appendChild(td);
    return td;
  }
  function render(items) {
    const rows = items.map(function (item) {
      const tr = document.createElement("tr");
      tr.className = "kind-" + item.kind;
      cell(tr, when(item.received_ms), "when");
      cell(tr, item.member || item.log);
      cell(tr, item.kind + (item.target ? " of " + item.target : ""));
      const hash = cell(tr, "", "hash");
      if (item.value) {
        const a = document.createElement("a");
        a.href = searchUrl + "?" + new URLSearchParams({ signal_type: item.signal_type, value: item.value });
        const full = visible(item.signal_type + ":" + item.value);
        hash.appendChild(a);
        if (full.length > 72) {  // as macros.html's hash_link: head and tail, and a copy button
          a.textContent = full.slice(0, 48) + "\u2026" + full.slice(-12);
          a.className = "hash short";
          a.title = full;
          const copy = document.createElement("button");
          copy.type = "button";
          copy.className = "copy";
          copy.dataset.copy = item.signal_type + ":" + item.value;
          copy.title = "Copy the whole hash (" + full.length + " characters)";
          copy.textContent = "copy";
          hash.appendChild(copy);
        } else {
          a.textContent = full;
        }
      } else {
        hash.textContent = visible(item.note);
      }
      cell(tr, item.labels.join(", "));
      cell(tr, item.incident || "");
      cell(tr, duration(item.delay_ms), "num");
      return tr;
    });
    if (rows.length === 0) {
      const tr = document.createElement("tr");
      tr.className = "empty";
      cell(tr, "Nothing has arrived yet.").colSpan = 7;
      rows.push(tr);
    }
    body.replaceChildren.apply(body, rows);
  }
  async function poll() {
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (response.status === 401) {
        state.textContent = "Logged out: reload the page to log in again.";
        return;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      const data = await response.json();
      render(data.items);
      state.textContent = "Updated " + when(data.now_ms) + "; refreshes every 2 seconds.";
    } catch (e) {
      state.textContent = "Could not refresh (" + e.message + "); retrying.";
    }
    setTimeout(poll, 2000);
  }
  setTimeout(poll, 2000);
})();
