"use strict";
// Search: words of the titles, bodies and comments of the tasks the
// member may read (GET /api/p/P/search?q=), found by the node in an index
// it keeps in memory only (docs/web.md, "Search"). A search box in the
// header; the results in their own view, each linking to its task. Uses
// app.js's api, el, $, current, showError, afterRefresh and inbox.js's
// taskLink.

(() => {
  const f = el("form");
  f.id = "search-form";
  f.setAttribute("role", "search");
  f.innerHTML = `<label for="search-q">Search</label> <input id="search-q" name="q" type="search" maxlength="200" autocomplete="off"> <button type="submit">Find</button>`;
  document.querySelector("header nav").after(f);
  const b = el("button", "Search");
  b.dataset.view = "search";
  b.className = "hidden"; // the view is reached from the box, not the nav
  document.querySelector("header nav").append(b);
  const sec = el("section", undefined, "view hidden");
  sec.id = "search";
  sec.innerHTML = `<h2 id="search-h">Search</h2><p id="search-note" role="status"></p><ul id="search-list" class="entries" aria-labelledby="search-h"></ul>`;
  $("#board").before(sec);
})();

let searched = ""; // the words of the results shown
function searchWords() { return searched; }

// runSearch shows the tasks that hold words, in the Search view.
async function runSearch(words) {
  searched = words.trim();
  $("#search-q").value = searched;
  const view = document.querySelector('header nav button[data-view="search"]');
  if ($("#search").classList.contains("hidden")) view.click();
  routeChanged(); // routes.js: a new search is a new address
  await showSearch();
}

async function showSearch() {
  if (!current || $("#search").classList.contains("hidden")) return;
  if (!searched) { $("#search-note").textContent = "Type words in the search box."; $("#search-list").replaceChildren(); return; }
  const hits = await api("/p/" + current + "/search?q=" + encodeURIComponent(searched));
  const where = {title: "in the title", body: "in the details", comment: "in a comment"};
  $("#search-note").textContent = hits.length ? hits.length + (hits.length === 1 ? " task holds “" : " tasks hold “") + searched + "”." : "No task you can read holds “" + searched + "”.";
  $("#search-list").replaceChildren(...hits.map((h) => {
    const li = el("li", undefined, "entry");
    const t = el("h3");
    t.append(taskLink(h.task, h.title));
    const snip = el("p", undefined, "snippet");
    h.snippet.split("\u0002").forEach((part, i) => {
      if (i === 0) { snip.append(part); return; }
      const [hit, rest] = part.split("\u0003");
      snip.append(el("mark", hit), rest || "");
    });
    li.append(t, el("p", where[h.where] || h.where, "muted small"), snip);
    return li;
  }));
}

document.addEventListener("DOMContentLoaded", () => {
  $("#search-form").onsubmit = (e) => { e.preventDefault(); runSearch($("#search-q").value).catch((err) => showError(err, $("#search-q"))); };
  afterRefresh.push(() => showSearch().catch(() => {}));
});
