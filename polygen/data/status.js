/* Sorting and filtering for the status page. One listener per control group (no per-row
   handlers, so 10,000 rows stay cheap); the view lives in the URL fragment
   (#sort=-last_seen&state=stale), so a filtered view can be linked and reloaded. */
(function () {
  "use strict";
  var table = document.getElementById("phones");
  if (!table) { return; }  // no phones: nothing to sort or filter
  var tbody = table.tBodies[0];
  var shown = document.getElementById("shown");
  var chips = Array.prototype.slice.call(document.querySelectorAll(".chips button"));
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var rows = Array.prototype.slice.call(tbody.rows);  // server order: severity, then MAC
  var cols = heads.map(function (th) { return th.getAttribute("data-col"); });
  var states = table.getAttribute("data-states").split(" ");
  var kinds = heads.map(function (th) { return th.getAttribute("data-kind"); });
  var collator = new Intl.Collator("en", { numeric: true, sensitivity: "base" });
  function plain(x, y) { return x < y ? -1 : (x > y ? 1 : 0); }
  var keys = {};  // column -> sort key of each row (by server-order index), built on first use
  var view = { col: "state", desc: false, state: "" };
  var drawn = { col: "state", desc: false, state: "" };  // what the DOM shows now

  function keysFor(col) {
    if (keys[col]) { return keys[col]; }
    var c = cols.indexOf(col), out = new Array(rows.length), i, text;
    for (i = 0; i < rows.length; i++) {
      if (col === "state") {
        out[i] = states.indexOf(rows[i].className.slice(2));
      } else {
        text = rows[i].cells[c].textContent;
        out[i] = text === "" ? null : text;
      }
    }
    keys[col] = out;
    return out;
  }

  function sortRows() {
    var k = keysFor(view.col), dir = view.desc ? -1 : 1, idx = new Array(rows.length), i;
    var kind = kinds[cols.indexOf(view.col)];
    // hex MACs and fixed-width times as plain text; versions, extensions, addresses numerically
    var compare = kind === "mac" || kind === "time" ? plain : collator.compare;
    for (i = 0; i < rows.length; i++) { idx[i] = i; }
    idx.sort(function (a, b) {
      var x = k[a], y = k[b], d;
      if (x === null || y === null) {  // empty cells last, whichever the direction
        return x === y ? a - b : (x === null ? 1 : -1);
      }
      d = typeof x === "number" ? x - y : compare(x, y);
      return d ? d * dir : a - b;  // ties keep the server order
    });
    // reorder a detached body: no style invalidation per moved row
    var next = tbody.nextSibling;
    table.removeChild(tbody);
    for (i = 0; i < idx.length; i++) { tbody.appendChild(rows[idx[i]]); }
    table.insertBefore(tbody, next);
  }

  function phones(n) { return n + (n === 1 ? " phone" : " phones"); }

  function filterRows() {
    var cls = "s-" + view.state, n = 0, i, hide;
    for (i = 0; i < rows.length; i++) {
      hide = view.state !== "" && rows[i].className !== cls;
      rows[i].hidden = hide;
      if (!hide) { n++; }
    }
    shown.textContent = view.state === "" ? phones(rows.length)
      : "Showing " + n + " of " + phones(rows.length) + " (" + view.state + ")";
  }

  function apply() {
    if (view.col !== drawn.col || view.desc !== drawn.desc) { sortRows(); }
    if (view.state !== drawn.state) { filterRows(); }
    drawn = { col: view.col, desc: view.desc, state: view.state };
    heads.forEach(function (th, i) {
      th.setAttribute("aria-sort", cols[i] !== view.col ? "none" : (view.desc ? "descending" : "ascending"));
    });
    chips.forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.getAttribute("data-state") === view.state));
    });
    table.setAttribute("data-view", (view.desc ? "-" : "") + view.col + (view.state ? " " + view.state : ""));
  }

  function readHash() {
    var p = new URLSearchParams(location.hash.slice(1));
    var col = p.get("sort") || "state", desc = col.charAt(0) === "-", state = p.get("state") || "";
    if (desc) { col = col.slice(1); }
    var known = cols.indexOf(col) >= 0;
    view = { col: known ? col : "state", desc: known && desc, state: states.indexOf(state) >= 0 ? state : "" };
  }

  function writeHash() {
    var parts = [];
    if (view.col !== "state" || view.desc) { parts.push("sort=" + (view.desc ? "-" : "") + view.col); }
    if (view.state) { parts.push("state=" + view.state); }
    try {
      history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname + location.search);
    } catch (e) { /* some file:// contexts refuse; the view still applies */ }
  }

  table.tHead.addEventListener("click", function (e) {
    var th = e.target.closest("th");
    if (!th) { return; }
    var col = th.getAttribute("data-col");
    view = { col: col, desc: view.col === col ? !view.desc : false, state: view.state };
    writeHash();
    apply();
  });
  document.querySelector(".chips").addEventListener("click", function (e) {
    var b = e.target.closest("button");
    if (!b || b.disabled) { return; }
    var state = b.getAttribute("data-state");
    view = { col: view.col, desc: view.desc, state: view.state === state ? "" : state };
    writeHash();
    apply();
  });
  window.addEventListener("hashchange", function () { readHash(); apply(); });
  readHash();
  apply();
}());
