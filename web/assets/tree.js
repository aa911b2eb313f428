"use strict";
// The task tree (the Tree view), in the WAI-ARIA tree pattern. Uses
// app.js's api, el, $, pretty, current, refresh, refocus, openDetail and
// showError.

// renderTree lists the tasks as a tree, in the WAI-ARIA tree pattern:
// one row in the tab order (roving tabindex), so Tab leaves the tree;
// Up/Down/Home/End move the focus, Right/Left expand, collapse or go to the
// child or the parent, Enter opens the task. Alt+Shift+Right makes the
// task a subtask of the one above, Alt+Shift+Left moves it up a level (a
// move, signed like any change); no plain key moves a task.
let treeActive = null; // the task whose row is in the tab order
// The tree shows the first treeShown top-level tasks (with all their
// subtasks); "Show more" adds treePage more, as the board does.
const treePage = 100;
let treeShown = treePage;
const collapsed = new Set(); // tasks whose subtasks are hidden, kept across reloads
let treeDrawn = "", treeTasks = ""; // what the tree shows, to skip rebuilding it unchanged
const treeSig = () => JSON.stringify([treeTasks, [...collapsed], treeShown]);
function renderTree(tasks) {
  // A live reload that changes nothing in the tree leaves it alone: a
  // rebuild under the member's hands could swallow a key press.
  treeTasks = JSON.stringify(tasks.map((t) => [t.id, t.title, t.status, t.parent]));
  const drawn = treeSig();
  if (drawn === treeDrawn && $("#tree-list").childElementCount > 0) return;
  treeDrawn = drawn;
  const byParent = new Map();
  const ids = new Set(tasks.map((t) => t.id));
  for (const t of tasks) {
    const p = ids.has(t.parent) ? t.parent : "";
    if (!byParent.has(p)) byParent.set(p, []);
    byParent.get(p).push(t);
  }
  if (!ids.has(treeActive)) treeActive = (byParent.get("") || [{id: null}])[0].id;
  // (treeActive beyond the rows shown: the first row takes its place below)
  const build = (parent, level) => {
    const ul = el("ul");
    ul.setAttribute("role", "group");
    const kids = byParent.get(parent) || [];
    (parent === "" ? kids.slice(0, treeShown) : kids).forEach((t, i) => {
      const li = el("li");
      li.setAttribute("role", "treeitem");
      li.setAttribute("aria-level", level);
      li.setAttribute("aria-setsize", kids.length);
      li.setAttribute("aria-posinset", i + 1);
      li.tabIndex = t.id === treeActive ? 0 : -1;
      li.dataset.id = t.id;
      const row = el("div", undefined, "row");
      const title = el("span", t.title, "title");
      title.id = "tree-title-" + t.id;
      // Named by what the row shows (the title, then the status; the
      // twisty is aria-expanded's picture), so speech and sight agree.
      const st = el("span", pretty(t.status), "st"), twisty = el("span", byParent.has(t.id) ? (collapsed.has(t.id) ? "▸" : "▾") : "", "twisty");
      st.id = "tree-st-" + t.id;
      twisty.setAttribute("aria-hidden", "true");
      li.setAttribute("aria-labelledby", title.id + " " + st.id);
      row.append(twisty, title, " ", st);
      row.onclick = (e) => { e.stopPropagation(); treeActive = t.id; if (e.target.classList.contains("twisty")) { toggle(t.id); return; } li.focus(); openDetail(t.id); };
      li.onfocus = (e) => { if (e.target !== li) return; treeActive = t.id; for (const x of document.querySelectorAll("#tree-list [role=treeitem]")) x.tabIndex = x === li ? 0 : -1; };
      li.onkeydown = async (e) => {
        if (e.target !== li) return;
        const open = byParent.has(t.id) && !collapsed.has(t.id);
        if (e.altKey && e.shiftKey && (e.key === "ArrowRight" || e.key === "ArrowLeft")) {
          e.preventDefault();
          let to = null;
          if (e.key === "ArrowLeft") { if (!t.parent || !ids.has(t.parent)) return; const p = tasks.find((x) => x.id === t.parent); to = ids.has(p.parent) ? p.parent : ""; }
          else { if (i === 0) return; to = kids[i - 1].id; collapsed.delete(to); }
          try {
            await api("/p/" + current + "/tasks/" + t.id + "/move", {parent: to});
            treeActive = t.id;
            await refresh();
            // The rebuild kept the focus on the row that had it (renderTree).
            // Only a focus lost altogether comes back to the moved row: the
            // member may have gone on meanwhile (a live reload may have shown
            // the move first, and the arrows or Enter moved on), and the
            // focus is then not the move's to take back.
            if (document.activeElement === document.body) refocus("#tree-list [role=treeitem]", t.id);
          } catch (err) { showError(err); }
          return;
        }
        if (e.altKey || e.ctrlKey || e.metaKey) return;
        const rows = [...document.querySelectorAll("#tree-list [role=treeitem]")].filter((x) => x.getClientRects().length > 0);
        const at = rows.indexOf(li);
        const go = (x) => { if (x) { e.preventDefault(); x.focus(); } };
        switch (e.key) {
        case "Enter": e.preventDefault(); openDetail(t.id); return;
        case "ArrowDown": go(rows[at + 1]); return;
        case "ArrowUp": go(rows[at - 1]); return;
        case "Home": go(rows[0]); return;
        case "End": go(rows[rows.length - 1]); return;
        case "ArrowRight":
          e.preventDefault();
          if (!byParent.has(t.id)) return;
          if (!open) toggle(t.id); else go(li.querySelector("[role=treeitem]"));
          return;
        case "ArrowLeft":
          e.preventDefault();
          if (open) toggle(t.id); else go(li.parentElement.closest("[role=treeitem]"));
          return;
        }
      };
      li.append(row);
      if (byParent.has(t.id)) {
        li.setAttribute("aria-expanded", open(t.id));
        const sub = build(t.id, level + 1);
        if (collapsed.has(t.id)) sub.classList.add("hidden");
        li.append(sub);
      }
      ul.append(li);
    });
    return ul;
  };
  const open = (id) => !collapsed.has(id);
  const list = $("#tree-list");
  const focused = list.contains(document.activeElement) ? document.activeElement.dataset.id : null;
  list.replaceChildren(...build("", 1).childNodes);
  const roots = (byParent.get("") || []).length, more = $("#tree-more");
  more.classList.toggle("hidden", roots <= treeShown);
  more.textContent = "Show " + Math.min(treePage, roots - treeShown) + " more (" + treeShown + " of " + roots + " top-level tasks shown)";
  more.onclick = () => { treeShown += treePage; renderTree(tasks); };
  refocus("#tree-list [role=treeitem]", focused);
  if (!list.querySelector("[tabindex='0']")) { const first = list.querySelector("[role=treeitem]"); if (first) { first.tabIndex = 0; treeActive = first.dataset.id; } }
}

// toggle collapses or expands a task's subtasks in the tree, in place.
function toggle(id) {
  const li = [...document.querySelectorAll("#tree-list [role=treeitem]")].find((x) => x.dataset.id === id);
  if (!li) return;
  const sub = li.querySelector(":scope > ul");
  if (!sub) return;
  const hide = !collapsed.has(id);
  if (hide) collapsed.add(id); else collapsed.delete(id);
  sub.classList.toggle("hidden", hide);
  li.setAttribute("aria-expanded", !hide);
  li.querySelector(":scope > .row .twisty").textContent = hide ? "▸" : "▾";
  treeDrawn = treeSig(); // the tree in the page is this one now
}
