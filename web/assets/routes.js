"use strict";
// Links: the page's address names what it shows, so that back and
// forward, bookmarks and a reload bring it back.
//
//   #/p/PURSUANCE/VIEW           a view of a pursuance (board, tree,
//                                members, links, profile, log, charter,
//                                inbox, search)
//   #/p/PURSUANCE/search/WORDS   a search
//   #/p/PURSUANCE/task/TASK      a task, open over the board (or the tree)
//   #/discover, #/devices        the views of the home
//
// Whatever the member does (a view, a pursuance, a task opened or closed)
// is written to the address as a new history entry; an address the
// browser goes to (back, forward, a bookmark, a typed one) is shown.
// Uses app.js's $, current, info, openTask, openDetail, closeDetail.

let routeApplying = false; // while an address is being shown: nothing is written
// routeSeen is the address the page last wrote or showed. When the
// browser's address differs from it, the browser went somewhere (back, a
// bookmark, a typed address) and its hashchange is on its way: what the
// page shows must not be written over it before it is shown. Until the
// first address is shown, nothing is written.
let routeSeen = null;

// routeNow is the address of what the page shows.
function routeNow() {
  const v = document.querySelector(".view:not(.hidden)");
  const view = v ? v.id : "board";
  if (view === "discover" || view === "devices") return "#/" + view;
  if (!current) return "";
  const base = "#/p/" + current + "/";
  if (openTask && !$("#detail").classList.contains("hidden")) return base + "task/" + openTask;
  if (view === "search" && typeof searchWords === "function" && searchWords()) return base + "search/" + encodeURIComponent(searchWords());
  return base + view;
}

// parseRoute reads an address: {p, view, task, words}, or null.
function parseRoute(hash) {
  const parts = hash.replace(/^#\/?/, "").split("/");
  if (parts[0] === "discover" || parts[0] === "devices") return {view: parts[0]};
  if (parts[0] !== "p" || !/^[0-9a-f]{64}$/.test(parts[1] || "")) return null;
  const r = {p: parts[1], view: parts[2] || "board"};
  if (r.view === "task" && /^[0-9a-f]{64}$/.test(parts[3] || "")) { r.task = parts[3]; r.view = ""; }
  if (r.view === "search" && parts[3]) r.words = decodeURIComponent(parts.slice(3).join("/"));
  return r;
}

// writeRoute records what the page shows as a new history entry (or, with
// replace, in place of the current one).
function writeRoute(replace) {
  if (routeApplying || location.hash !== routeSeen) return;
  const r = routeNow();
  if (!r || r === location.hash) return;
  if (replace) history.replaceState(null, "", r); else history.pushState(null, "", r);
  routeSeen = r;
}

let routeTimer = null;
function routeChanged() {
  clearTimeout(routeTimer);
  routeTimer = setTimeout(() => writeRoute(false), 0); // once what changed has settled
}

// applyRoute shows what the address names.
async function applyRoute(hash) {
  routeSeen = hash;
  const r = parseRoute(hash);
  if (!r) return;
  routeApplying = true;
  try {
    if (r.p && r.p !== current) {
      const sel = $("#pursuance");
      if (![...sel.options].some((o) => o.value === r.p)) { showError(new Error("This address names a pursuance this home does not hold: it shows " + (sel.selectedOptions[0] ? sel.selectedOptions[0].textContent : "nothing") + " instead.")); return; }
      sel.value = r.p;
      sel.dispatchEvent(new Event("change"));
      await waitFor(() => info && info.pursuance === r.p);
    }
    if (r.view === "discover") { $("#discover-open").click(); return; }
    if (r.view === "devices") { $("#devices-open").click(); return; }
    let view = r.view;
    if (r.task) {
      const shown = document.querySelector(".view:not(.hidden)");
      view = shown && shown.id === "tree" ? "tree" : "board";
    }
    const b = document.querySelector('header nav button[data-view="' + view + '"]');
    if (!b) return;
    if (!b.classList.contains("active") || document.querySelector(".view:not(.hidden)")?.id !== view) b.click();
    if (r.words !== undefined && typeof runSearch === "function") await runSearch(r.words);
    if (r.task) { if (openTask !== r.task || $("#detail").classList.contains("hidden")) await openDetail(r.task); } else closeDetail(true);
  } finally {
    routeApplying = false;
  }
}

// waitFor resolves once ok() holds, or after 10 s.
function waitFor(ok) {
  return new Promise((res) => {
    const end = Date.now() + 10000;
    const tick = () => { if (ok() || Date.now() > end) res(); else setTimeout(tick, 50); };
    tick();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  // What the page shows changes with the views' and the panel's classes
  // and the pursuance picked.
  new MutationObserver(routeChanged).observe($("main"), {attributes: true, attributeFilter: ["class"], subtree: true});
  $("#pursuance").addEventListener("change", routeChanged);
  window.addEventListener("hashchange", () => { if (location.hash !== routeNow()) applyRoute(location.hash); else routeSeen = location.hash; });
  // The first address is shown once the pursuances are listed.
  const first = location.hash;
  waitFor(() => info || locked || stopped).then(async () => {
    if (first && first !== routeNow()) await applyRoute(first); else routeSeen = location.hash;
    writeRoute(true);
  });
});
