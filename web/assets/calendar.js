"use strict";
// The calendar (docs/web.md, Calendar): the tasks with a due date, by
// month or by week, and "overdue" marked everywhere a task shows — board
// cards, tree rows, the task dialog. Dates are the tasks' own (a day, no
// time: "YYYY-MM-DD") against this computer's calendar day.

let calMode = matchMedia("(max-width: 700px)").matches ? "week" : "month";
let calAnchor = new Date(); // a day in the month or week shown
let calTasks = [];

// ymd gives a Date's local calendar day as "YYYY-MM-DD".
function ymd(d) {
  return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
}

// isOverdue: due before today and not done.
function isOverdue(t) { return !!t.due && t.status !== "Done" && !t.archived && t.due < ymd(new Date()); }

// markOverdue marks the overdue tasks' cards and rows, in words as well
// as colour: app.js and tree.js build them; this runs after each build.
function markOverdue(tasks) {
  const late = new Set(tasks.filter(isOverdue).map((t) => t.id));
  for (const e of document.querySelectorAll("#columns .card[data-id], #tree-list [role=treeitem][data-id] > .row")) {
    const id = e.dataset.id || e.parentElement.dataset.id, on = late.has(id);
    e.classList.toggle("overdue", on);
    const had = e.querySelector(":scope > .overdue-badge");
    if (on && !had) e.append(el("span", "Overdue", "overdue-badge"));
    if (!on && had) had.remove();
  }
}

// calDays returns the days shown: the weeks (Monday first) that cover the
// month of calAnchor, or its week.
function calDays() {
  const a = new Date(calAnchor.getFullYear(), calAnchor.getMonth(), calAnchor.getDate(), 12);
  const monday = (d) => { const x = new Date(d); x.setDate(x.getDate() - (x.getDay() + 6) % 7); return x; };
  let start, count;
  if (calMode === "week") { start = monday(a); count = 7; } else {
    const first = new Date(a.getFullYear(), a.getMonth(), 1, 12), last = new Date(a.getFullYear(), a.getMonth() + 1, 0, 12);
    start = monday(first);
    count = Math.round((last - start) / 864e5) + 1;
    count = Math.ceil(count / 7) * 7;
  }
  return Array.from({length: count}, (_, i) => { const d = new Date(start); d.setDate(start.getDate() + i); return d; });
}

function renderCalendar(tasks) {
  calTasks = tasks;
  const box = $("#cal-grid");
  if (!box) return;
  markOverdue(tasks);
  const byDay = new Map();
  for (const t of tasks) if (t.due) { if (!byDay.has(t.due)) byDay.set(t.due, []); byDay.get(t.due).push(t); }
  const days = calDays(), today = ymd(new Date()), month = calAnchor.getMonth();
  $("#cal-title").textContent = calMode === "month" ?
    calAnchor.toLocaleDateString([], {month: "long", year: "numeric"}) :
    "Week of " + days[0].toLocaleDateString([], {day: "numeric", month: "long", year: "numeric"});
  $("#cal-month").setAttribute("aria-pressed", String(calMode === "month"));
  $("#cal-week").setAttribute("aria-pressed", String(calMode === "week"));
  const table = el("table", undefined, "cal " + calMode);
  const head = el("thead"), hr = el("tr");
  for (const d of days.slice(0, 7)) { const th = el("th", d.toLocaleDateString([], {weekday: "short"})); th.scope = "col"; hr.append(th); }
  head.append(hr);
  const body = el("tbody");
  let tr = null;
  days.forEach((d, i) => {
    if (i % 7 === 0) { tr = el("tr"); body.append(tr); }
    const key = ymd(d), due = byDay.get(key) || [];
    const td = el("td");
    td.dataset.day = key;
    if (key === today) td.classList.add("today");
    if (calMode === "month" && d.getMonth() !== month) td.classList.add("other-month");
    if (due.length === 0) td.classList.add("no-tasks");
    const label = d.toLocaleDateString([], {weekday: "long", day: "numeric", month: "long"});
    const h = el("div", undefined, "day");
    h.append(el("span", String(d.getDate()), "num"), el("span", " " + label, "long"));
    if (key === today) h.append(el("span", " today", "muted small"));
    td.append(h);
    const ul = el("ul");
    ul.setAttribute("aria-label", label + ": " + (due.length ? due.length + (due.length === 1 ? " task due" : " tasks due") : "nothing due"));
    for (const t of due) {
      const li = el("li"), b = el("button", t.title, "cal-task");
      b.type = "button";
      b.dataset.id = t.id;
      if (t.status === "Done") b.classList.add("done");
      if (isOverdue(t)) { b.classList.add("overdue"); b.append(el("span", " (overdue)", "overdue-badge")); }
      b.title = pretty(t.status) + (t.assignees.length ? " · @" + t.assignees.join(" @") : "");
      b.onclick = () => openDetail(t.id);
      li.append(b);
      ul.append(li);
    }
    td.append(ul);
    tr.append(td);
  });
  table.append(head, body);
  box.replaceChildren(table);
  const undated = tasks.filter((t) => !t.due).length;
  $("#cal-undated").textContent = undated ? undated + (undated === 1 ? " task has" : " tasks have") + " no due date (the board and the tree show them)." : "";
}

function calMove(step) {
  const a = new Date(calAnchor);
  if (calMode === "month") a.setMonth(a.getMonth() + step, 1); else a.setDate(a.getDate() + 7 * step);
  calAnchor = a;
  renderCalendar(calTasks);
}

document.addEventListener("DOMContentLoaded", () => {
  // Cards and rows built later ("Show more", a subtree opened) are marked too.
  const again = () => markOverdue(calTasks);
  new MutationObserver(again).observe($("#columns"), {childList: true, subtree: true});
  new MutationObserver(again).observe($("#tree-list"), {childList: true, subtree: true});
  $("#cal-prev").onclick = () => calMove(-1);
  $("#cal-next").onclick = () => calMove(1);
  $("#cal-today").onclick = () => { calAnchor = new Date(); renderCalendar(calTasks); };
  $("#cal-month").onclick = () => { calMode = "month"; renderCalendar(calTasks); };
  $("#cal-week").onclick = () => { calMode = "week"; renderCalendar(calTasks); };
});
