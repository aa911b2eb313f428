"use strict";
// The board's hands (docs/web.md, Board): drag a card to another column,
// or move it from the keyboard with "Move to…" (a menu; the M key on a
// card opens it too); each subtask's card names its parent; the assignee
// is picked from the members and roles; what is written in markdown is
// previewed as it is typed; a phone shows one column at a time, with a
// tab per column (and a swipe to the next or previous).

let dragging = null;   // the task dragged
let boardTab = null;   // the status whose column a phone shows
const phone = matchMedia("(max-width: 700px)");

// moveTask sets a task's status from the board and keeps the focus on
// its card, in its new column.
async function moveTask(id, status) {
  const t = lastTasks.find((x) => x.id === id);
  if (!t || t.status === status) return;
  // The focus follows the card only if it was on it (or its menu) or is
  // lost: a late answer never takes it from where the user went since.
  const onCard = () => { const a = document.activeElement; return !a || a === document.body || (a.closest("[data-id]") || {}).dataset?.id === id; };
  const had = onCard();
  try {
    await api("/p/" + current + "/tasks/" + id + "/status", {status, report: false});
    say("Moved “" + t.title + "” to " + pretty(status) + ".");
    await refresh();
    if (had && onCard()) refocus("#columns .card", id);
  } catch (err) { showError(err); }
}

// decorateBoard is called by renderBoard after it builds the columns.
function decorateBoard(tasks) {
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const cols = [...document.querySelectorAll("#columns .column")];
  cols.forEach((c, i) => {
    const s = info.statuses[i];
    c.dataset.status = s;
    c.id = "col-" + s;
    c.ondragover = (e) => { if (dragging) { e.preventDefault(); e.dataTransfer.dropEffect = "move"; c.classList.add("drop"); } };
    c.ondragleave = (e) => { if (!c.contains(e.relatedTarget)) c.classList.remove("drop"); };
    c.ondrop = (e) => { e.preventDefault(); c.classList.remove("drop"); const id = e.dataTransfer.getData("text/plain") || dragging; if (id) moveTask(id, s); };
  });
  for (const card of document.querySelectorAll("#columns .card[data-id]")) {
    if (card.dataset.decorated) continue;
    card.dataset.decorated = "1";
    const t = byId.get(card.dataset.id);
    if (!t) continue;
    card.draggable = true;
    card.ondragstart = (e) => { e.dataTransfer.setData("text/plain", t.id); e.dataTransfer.effectAllowed = "move"; dragging = t.id; card.classList.add("dragging"); };
    card.ondragend = () => { dragging = null; card.classList.remove("dragging"); document.querySelectorAll(".column.drop").forEach((c) => c.classList.remove("drop")); };
    if (t.parent) {
      const p = byId.get(t.parent)?.title ?? boardParents[t.parent]; // a parent on the board, or in the list past its pages
      card.prepend(el("div", (p ?? "a task not shown here") + " ›", "crumb"));
      card.setAttribute("aria-description", "subtask of " + (p ?? "a task not shown here"));
    }
    const b = el("button", "Move to…", "move-to");
    b.type = "button";
    b.setAttribute("aria-haspopup", "menu");
    b.setAttribute("aria-label", "Move to… (“" + t.title + "”)");
    b.onclick = (e) => { e.stopPropagation(); openMoveMenu(card, t, b); };
    b.onkeydown = (e) => e.stopPropagation(); // Enter is the button's, not the card's
    card.append(b);
    card.addEventListener("keydown", (e) => {
      if (e.target === card && (e.key === "m" || e.key === "M") && !e.ctrlKey && !e.altKey && !e.metaKey) { e.preventDefault(); openMoveMenu(card, t, b); }
    });
  }
  phoneTabs(tasks);
  updatePreviews();
  fillAssignees();
}

// openMoveMenu opens the "Move to…" menu of a card: the other statuses,
// ↑/↓ between them, Enter to move, Esc to close (the focus goes back).
function openMoveMenu(card, t, opener) {
  closeMoveMenu();
  const menu = el("div", undefined, "move-menu");
  menu.id = "move-menu";
  menu.setAttribute("role", "menu");
  menu.setAttribute("aria-label", "Move “" + t.title + "” to");
  const items = info.statuses.filter((s) => s !== t.status).map((s) => {
    const it = el("button", pretty(s));
    it.type = "button";
    it.setAttribute("role", "menuitem");
    it.tabIndex = -1;
    it.onclick = (e) => { e.stopPropagation(); closeMoveMenu(); moveTask(t.id, s); };
    return it;
  });
  menu.append(...items);
  menu.onclick = (e) => e.stopPropagation();
  menu.addEventListener("keydown", (e) => {
    e.stopPropagation();
    const i = items.indexOf(document.activeElement);
    if (e.key === "ArrowDown") { e.preventDefault(); items[(i + 1) % items.length].focus(); } else if (e.key === "ArrowUp") { e.preventDefault(); items[(i - 1 + items.length) % items.length].focus(); } else if (e.key === "Home") { e.preventDefault(); items[0].focus(); } else if (e.key === "End") { e.preventDefault(); items[items.length - 1].focus(); } else if (e.key === "Escape") { e.preventDefault(); closeMoveMenu(); card.focus(); } else if (e.key === "Tab") closeMoveMenu();
  });
  opener.setAttribute("aria-expanded", "true");
  card.append(menu);
  items[0].focus();
}

function closeMoveMenu() {
  const m = $("#move-menu");
  if (!m) return;
  const opener = m.parentElement.querySelector(".move-to");
  if (opener) opener.setAttribute("aria-expanded", "false");
  m.remove();
}

// phoneTabs: on a phone, a tab per column (its name and count) and only
// the chosen column shown; a swipe on the board goes to the next or
// previous column.
function phoneTabs(tasks) {
  let bar = $("#col-tabs");
  if (!bar) {
    bar = el("div", undefined, "col-tabs");
    bar.id = "col-tabs";
    bar.setAttribute("role", "tablist");
    bar.setAttribute("aria-label", "Columns");
    $("#columns").before(bar);
  }
  const statuses = info.statuses;
  if (!statuses.includes(boardTab)) boardTab = statuses[0];
  const on = phone.matches;
  bar.replaceChildren(...statuses.map((s) => {
    const b = el("button", pretty(s) + " " + countOf(s, tasks));
    b.type = "button";
    b.setAttribute("role", "tab");
    b.setAttribute("aria-selected", String(s === boardTab));
    b.setAttribute("aria-controls", "col-" + s);
    b.tabIndex = s === boardTab ? 0 : -1;
    b.onclick = () => { boardTab = s; phoneTabs(lastTasks); };
    b.onkeydown = (e) => {
      const i = statuses.indexOf(s), next = e.key === "ArrowRight" ? i + 1 : e.key === "ArrowLeft" ? i - 1 : -1;
      if (next < 0 || next >= statuses.length) return;
      e.preventDefault();
      boardTab = statuses[next];
      phoneTabs(lastTasks);
      $("#col-tabs [aria-selected=true]").focus();
    };
    return b;
  }));
  for (const c of document.querySelectorAll("#columns .column")) {
    c.classList.toggle("tab-hidden", on && c.dataset.status !== boardTab);
    if (on) { c.setAttribute("role", "tabpanel"); c.setAttribute("aria-label", pretty(c.dataset.status)); } else { c.removeAttribute("role"); c.removeAttribute("aria-label"); }
  }
}

// Previews: each markdown field shows, under it, what it will look like.
const previewed = ['#new-task input[name="body"]', '#d-edit textarea[name="body"]', '#d-comment textarea[name="text"]'];
function updatePreviews() {
  for (const sel of previewed) {
    const f = $(sel);
    if (!f) continue;
    let box = document.getElementById(f.closest("form").id + "-preview");
    if (!box) {
      box = el("div", undefined, "md-preview");
      box.id = f.closest("form").id + "-preview";
      box.setAttribute("aria-label", "Preview");
      box.setAttribute("role", "region");
      f.addEventListener("input", updatePreviews);
      (f.closest("form").id === "new-task" ? f.closest("form") : f).after(box);
    }
    const text = f.value.trim();
    box.classList.toggle("hidden", text === "");
    if (box.dataset.text === text) continue;
    box.dataset.text = text;
    const body = el("div", undefined, "markdown");
    body.append(...markdown(f.value));
    box.replaceChildren(el("div", "Preview", "preview-label"), body);
  }
}

// The assignee is picked: the members by name, then the roles.
function fillAssignees() {
  const sel = $('#d-assign select[name="who"]');
  if (!sel || !info) return;
  const key = JSON.stringify([info.members.map((m) => [m.id, m.name]), info.roles]);
  if (sel.dataset.key === key) return;
  sel.dataset.key = key;
  const was = sel.value;
  const pick = el("option", "— pick one —"); pick.value = "";
  const mg = el("optgroup"); mg.label = "Members";
  mg.append(...info.members.map((m) => { const o = el("option", m.name); o.value = m.id; return o; }));
  const rg = el("optgroup"); rg.label = "Roles (whoever holds it)";
  rg.append(...info.roles.map((r) => { const o = el("option", "role: " + r); o.value = "role:" + r; return o; }));
  sel.replaceChildren(pick, mg, rg);
  sel.value = was;
}

document.addEventListener("DOMContentLoaded", () => {
  phone.addEventListener("change", () => { if (info) phoneTabs(lastTasks); });
  document.addEventListener("click", closeMoveMenu);
  // A swipe across the board moves between its columns on a phone.
  let x0 = null;
  $("#columns").addEventListener("touchstart", (e) => { x0 = e.touches[0].clientX; }, {passive: true});
  $("#columns").addEventListener("touchend", (e) => {
    if (x0 === null || !phone.matches) return;
    const dx = e.changedTouches[0].clientX - x0, i = info.statuses.indexOf(boardTab);
    x0 = null;
    if (Math.abs(dx) < 60) return;
    const next = i + (dx < 0 ? 1 : -1);
    if (next >= 0 && next < info.statuses.length) { boardTab = info.statuses[next]; phoneTabs(lastTasks); }
  });
  new MutationObserver(fillAssignees).observe($("#d-title"), {childList: true, characterData: true, subtree: true});
  for (const f of ["#d-comment", "#new-task", "#d-edit"]) $(f).addEventListener("submit", () => setTimeout(updatePreviews, 0));
});
