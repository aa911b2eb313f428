"use strict";
// The Pursuance UI: a thin client of /api. Every request carries the
// session's token, which the login page (login.js) keeps in this origin's
// storage; the session's cookie goes along by itself.
const token = localStorage.getItem("pursuance-token") || "";
let locked = false;
const $ = (s) => document.querySelector(s);
let current = null, info = null, openTask = null;
// detailTicket counts the detail panel's openings and closings: a load
// that returns after a newer one (or after the user closed the panel)
// is dropped instead of reopening what the user closed.
let detailTicket = 0;

// closeDetail closes the task panel (a dialog) and gives the focus back
// to the task's row or card in the view shown, or to what had it before;
// not when the page moves on (another view or pursuance: keepFocus).
function closeDetail(keepFocus) {
  detailTicket++;
  $("#d-edit").classList.add("hidden");
  const was = openTask, wasOpen = !$("#detail").classList.contains("hidden");
  openTask = null;
  $("#detail").classList.add("hidden");
  if (!wasOpen || keepFocus === true) { detailOpener = null; return; }
  const back = [...document.querySelectorAll(".view:not(.hidden) [data-id]")].find((x) => x.dataset.id === was);
  if (back) { if (back.matches("#tree-list [role=treeitem]")) treeActive = was; back.focus(); } else if (detailOpener && detailOpener.isConnected) detailOpener.focus();
  detailOpener = null;
}
let detailOpener = null;

// A stopped node: fetch fails (the port is closed). The page says so and
// hides what it showed, which nothing keeps up to date any more; the first
// answer from the node again (a 401 after a restart) ends it.
let stopped = false;
const stoppedMessage = "Your node stopped: run `pursuance up` to start it again.";
function nodeStopped() {
  if (stopped || locked) return; // a 401 came: the node runs (a request that failed before it ends late)
  stopped = true;
  document.body.classList.add("stopped");
  $("#error").classList.add("hidden");
}

async function api(path, body) {
  const headers = {"X-Pursuance-Token": token};
  const opts = body === undefined ? {headers} : {method: "POST", headers: {...headers, "Content-Type": "application/json"}, body: JSON.stringify(body)};
  let r;
  try { r = await fetch("/api" + path, opts); } catch (err) { nodeStopped(); throw new Error(stoppedMessage); }
  if (stopped) { stopped = false; document.body.classList.remove("stopped"); setTimeout(liveRefresh, 0); }
  if (r.status === 401) lockOut();
  const data = await r.json().catch(() => ({error: r.statusText}));
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}

// lockOut shows, instead of the UI, how to log in: the session is
// unknown (never logged in, or the node restarted since).
function lockOut() {
  if (locked) return;
  locked = true;
  stopped = false; // it answered
  document.body.classList.remove("stopped");
  localStorage.removeItem("pursuance-token");
  document.body.classList.add("locked");
}

// showError shows what went wrong. With a field (an input, select or
// textarea), next to it: marked invalid and described by the message,
// until it is changed or its form succeeds. Without, in the error box at
// the bottom, until it is closed or a later action succeeds. Neither
// vanishes on a timer: a person reads at their own pace.
function showError(err, field) {
  if (locked || stopped) return;
  const msg = err.message || String(err);
  if (field) { fieldError(field, msg); return; }
  const e = $("#error");
  $("#error-text").textContent = msg;
  e.classList.remove("hidden");
}

function fieldError(field, msg) {
  // Named by its form too: several forms have a field "code".
  const id = (field.id || (field.form && field.form.id ? field.form.id + "-" : "") + (field.name || "field")) + "-error";
  let p = document.getElementById(id);
  if (!p) {
    p = el("p", undefined, "field-error");
    p.id = id;
    (field.closest("label") || field).after(p);
  }
  p.textContent = msg;
  field.setAttribute("aria-invalid", "true");
  field.setAttribute("aria-describedby", id);
  field.addEventListener("input", () => clearFieldError(field), {once: true});
  field.focus();
}

function clearFieldError(field) {
  const id = field.getAttribute("aria-describedby");
  if (!id || !id.endsWith("-error")) return;
  const p = document.getElementById(id);
  if (p) p.remove();
  field.removeAttribute("aria-invalid");
  field.removeAttribute("aria-describedby");
}

// say shows a message that is not an error (a success, a proposal): in
// the status box, announced politely, for 8 s.
let sayTimer = null;
function say(msg) {
  $("#error").classList.add("hidden");
  const n = $("#notice");
  n.textContent = msg;
  n.classList.remove("hidden");
  clearTimeout(sayTimer);
  sayTimer = setTimeout(() => n.classList.add("hidden"), 8000);
}

// pretty turns a status name into words: "ReadyForReview" → "Ready for review".
function pretty(s) {
  const w = s.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
  return w.charAt(0).toUpperCase() + w.slice(1);
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

async function loadPursuances() {
  const me = await api("/me");
  $("#me").textContent = me.name;
  const ps = await api("/pursuances");
  const sel = $("#pursuance");
  sel.replaceChildren(...ps.map((p) => { const o = el("option", p.name); o.value = p.pursuance; return o; }));
  if (ps.length === 0) { sel.replaceChildren(el("option", "No pursuance yet: New… founds or joins one")); return; }
  current = current || ps[0].pursuance;
  sel.value = current;
  await refresh();
}

// liveRefresh reloads what the page shows, at most one reload at a time:
// changes announced during one are covered by one more after it.
let refreshing = null, again = false;
function liveRefresh() {
  if (refreshing) { again = true; return; }
  refreshing = loadPursuances().catch(() => {}).finally(() => { // names change too
    refreshing = null;
    if (typeof loadDevicesIfShown === "function") loadDevicesIfShown(); // devices.js
    if (again) { again = false; liveRefresh(); }
  });
}

async function refresh() {
  if (!current) return;
  info = await api("/p/" + current);
  const vis = $('#new-task select[name="visible_to"]');
  // The roles' selects are rebuilt only when the roles change (an
  // amendment), keeping what the user picked.
  const roles = info.roles.join("\n");
  if (vis.dataset.roles !== roles) {
    const was = vis.value;
    vis.replaceChildren(el("option", "Visible to: default"), ...info.roles.map((r) => { const o = el("option", "Visible to: " + r); o.value = r; return o; }));
    vis.options[0].value = "";
    vis.value = info.roles.includes(was) ? was : "";
    vis.dataset.roles = roles;
  }
  permitForm($("#new-task"), info.may_create, "new-task");
  $("#sealed").textContent = info.sealed_tasks ? info.sealed_tasks + " tasks sealed for roles you do not hold" : "";
  // The board asks for what it shows: of each status the cards it shows
  // and the count (docs/web.md, "Paging"); the whole list, which a big
  // pursuance makes megabytes of, only when the tree or the calendar is
  // on screen (they show every task).
  const filter = "filter=" + encodeURIComponent($("#filter").value);
  const page = await api("/p/" + current + "/tasks?" + filter + "&per_status=" + Math.min(maxPage, Math.max(pageSize, ...colShown.values())));
  clearFieldError($("#filter"));
  boardCounts = page.counts; boardParents = page.parents;
  renderBoard(page.tasks);
  const whole = ["#tree", "#calendar"].some((v) => !$(v).classList.contains("hidden")) ? await api("/p/" + current + "/tasks?" + filter) : null;
  if (whole) renderTree(whole);
  renderCalendar(whole || page.tasks); // calendar.js: also marks the overdue cards and rows
  loadStatus();
  await loadLinks(); // links.js
  await loadProfile(false); // profiles.js
  const roleSel = $('#invite select[name="role"]');
  if (roleSel.dataset.roles !== roles) {
    const was = roleSel.value;
    roleSel.replaceChildren(...info.roles.map((r) => el("option", r)));
    if (info.roles.includes(was)) roleSel.value = was;
    roleSel.dataset.roles = roles;
  }
  $("#relays").replaceChildren(...(info.relays.length ? info.relays.map((u) => {
    const li = el("li", u + " "), rm = el("button", "Remove");
    rm.onclick = async () => { try { await api("/p/" + current + "/relays", {remove: u}); await refresh(); } catch (err) { showError(err); } };
    li.append(rm);
    return li;
  }) : [el("li", "none: this pursuance lives on its members' nodes")]));
  const mb = $("#members tbody");
  mb.replaceChildren(...info.members.map((m) => {
    const tr = el("tr");
    const act = el("td", undefined, "actions");
    const sel = el("select");
    sel.setAttribute("aria-label", "Role for " + m.name);
    sel.replaceChildren(...info.roles.map((r) => el("option", r)));
    const give = el("button", "Give"), take = el("button", "Take"), rm = el("button", "Remove", "danger");
    give.dataset.act = "give"; take.dataset.act = "take"; rm.dataset.act = "remove"; tr.dataset.member = m.id; // governance.js
    const change = async (body, path) => {
      try {
        const r = await api("/p/" + current + "/members/" + m.id + path, body);
        if (r.proposed) say("Proposed: the charter asks a quorum; others approve it.");
        else if (r.not_rekeyed && r.not_rekeyed.length) say("Done; left for a key holder to re-key: " + r.not_rekeyed.join("; "));
        await refresh();
      } catch (err) { showError(err); }
    };
    give.onclick = () => change({role: sel.value, action: "assign"}, "/roles");
    take.onclick = () => change({role: sel.value, action: "revoke"}, "/roles");
    rm.onclick = () => { if (window.confirm("Remove " + m.name + "? Everything it could read is re-keyed; it reads nothing written afterwards.")) change({}, "/remove"); };
    const lab = el("label", "Role "); // visible; the select's own name says whose
    lab.append(sel);
    act.append(lab, give, take, rm);
    const activity = el("td", m.inactive_since ? "inactive since " + m.inactive_since.slice(0, 10) : "active");
    if (m.inactive_since) activity.title = "Signed nothing since " + m.inactive_since + ", by the members' own clocks";
    tr.append(el("td", m.name), el("td", m.roles.join(", ")), activity, el("td", m.fingerprint, "fp"), act);
    labelCells(tr, "#members");
    return tr;
  }));
  $("#claims").replaceChildren(...(info.claims.length ? info.claims.map((c) => el("li",
    c.role + " claimed by " + c.claimant + (c.mine ? " (you)" : "") + ": " +
    (c.cancelled ? "cancelled, " + c.cancelled : "may complete from " + c.due.slice(0, 10) + " (" + c.claim.slice(0, 12) + ")"))) :
    [el("li", "none")]));
  if (typeof loadSuccession === "function") await loadSuccession(); // succession.js
  if (!$("#members").classList.contains("hidden")) await loadGovernance(); // governance.js; also on opening Members
  if (!$("#log").classList.contains("hidden")) await loadLog();
  if (openTask) await openDetail(openTask, true);
  for (const f of afterRefresh) f(); // inbox.js, activity.js, search.js
}

// afterRefresh are called after each refresh of the page's pursuance:
// the modules that show more of it reload what they show.
const afterRefresh = [];

// The board shows at most pageSize cards per column, and "Show more"
// adds as many again (colShown, per status, kept across live reloads): a
// desk of 2,000 tasks would otherwise be one column thousands of cards
// long, rebuilt at every change. The heading counts them all.
const pageSize = 50;
const maxPage = 500; // web.MaxTaskPage: past it, the filter narrows a column
const colShown = new Map();
let lastTasks = [];      // the tasks the board shows
let boardCounts = null;  // of each status, how many tasks the filter keeps
let boardParents = {};   // the titles of the shown tasks' parents

// countOf is how many tasks of status s the filter keeps, shown or not.
function countOf(s, tasks) { return boardCounts ? boardCounts[s] || 0 : tasks.filter((t) => t.status === s).length; }

// renderBoard shows the tasks in one column per status.
let boardDrawn = ""; // what the board shows, to skip rebuilding it unchanged (see renderTree)
function renderBoard(tasks) {
  lastTasks = tasks;
  const drawn = JSON.stringify([tasks, boardCounts, info.statuses, [...colShown], $("#filter").value]);
  if (drawn === boardDrawn) return;
  boardDrawn = drawn;
  const cols = $("#columns");
  const focusedCard = cols.contains(document.activeElement) ? document.activeElement.closest("[data-id]")?.dataset.id : null; // a card, or its menu (board.js)
  // A filter that matches nothing says so, in the board and the tree.
  const filter = $("#filter").value.trim();
  for (const v of ["#board", "#tree"]) {
    const old = document.querySelector(v + " .empty");
    if (old) old.remove();
    if (tasks.length === 0) { // the board's page is empty only when the list is
      const p = el("p", filter ? "No task matches the filter “" + filter + "”. “All” shows every task." : "No tasks yet.", "empty");
      p.setAttribute("role", "status");
      (v === "#board" ? cols : $("#tree-list")).before(p);
    }
  }
  cols.replaceChildren(...info.statuses.map((s) => {
    const c = el("div", undefined, "column");
    const mine = tasks.filter((t) => t.status === s);
    const h = el("h3", pretty(s));
    const count = countOf(s, tasks);
    h.append(el("span", " " + count, "count"));
    c.append(h);
    const shown = colShown.get(s) || pageSize;
    for (const t of mine.slice(0, shown)) {
      const card = el("div", undefined, "card");
      card.tabIndex = 0;
      card.dataset.id = t.id;
      card.append(el("div", t.title));
      const meta = [t.assignees.length ? "@" + t.assignees.join(" @") : "", t.due ? "due " + t.due : "", t.comments ? t.comments + (t.comments === 1 ? " comment" : " comments") : ""].filter(Boolean).join(" · ");
      card.append(el("div", meta, "meta"));
      if (t.origin) card.append(originBadge(t.origin)); // links.js
      card.onclick = () => openDetail(t.id);
      card.onkeydown = (e) => { if (e.key === "Enter") openDetail(t.id); };
      c.append(card);
    }
    if (count > shown && shown >= maxPage) {
      c.append(el("p", shown + " of " + count + " shown: a filter finds the others.", "muted small"));
    } else if (count > shown) {
      const more = el("button", "Show " + Math.min(pageSize, count - shown) + " more (" + shown + " of " + count + " shown)", "more");
      more.type = "button";
      more.onclick = async () => {
        colShown.set(s, shown + pageSize);
        try { await refresh(); } catch (err) { showError(err); return; }
        const next = [...document.querySelectorAll("#columns .column")][info.statuses.indexOf(s)].querySelectorAll(".card")[shown];
        if (next) next.focus();
      };
      c.append(more);
    }
    return c;
  }));
  refocus("#columns .card", focusedCard);
  decorateBoard(tasks); // board.js
  if (tasks.length && performance.getEntriesByName("board-drawn").length === 0) performance.mark("board-drawn"); // the first cards, for TestBrowserBench2000
}

// markdown renders a task body's light markdown — paragraphs, "- " lists,
// **bold**, *italic*, `code`, [text](https://…) — as DOM nodes, never as
// HTML, so nothing in a body can run.
function markdown(text) {
  const out = [];
  const inline = (s, parent) => {
    const re = /(\*\*[^*]+\*\*|\*[^*]+\*|`[^`]+`|\[[^\]]+\]\(https?:\/\/[^)\s]+\))/g;
    let last = 0, m;
    while ((m = re.exec(s)) !== null) {
      parent.append(document.createTextNode(s.slice(last, m.index)));
      const t = m[0];
      if (t.startsWith("**")) parent.append(el("strong", t.slice(2, -2)));
      else if (t.startsWith("`")) parent.append(el("code", t.slice(1, -1)));
      else if (t.startsWith("[")) {
        const a = el("a", t.slice(1, t.indexOf("]")));
        a.href = t.slice(t.indexOf("(") + 1, -1); a.rel = "noopener noreferrer"; a.target = "_blank";
        parent.append(a);
      } else parent.append(el("em", t.slice(1, -1)));
      last = re.lastIndex;
    }
    parent.append(document.createTextNode(s.slice(last)));
  };
  for (const block of text.split(/\n\s*\n/)) {
    const lines = block.split("\n").filter((l) => l.trim() !== "");
    if (lines.length === 0) continue;
    if (lines.every((l) => /^\s*[-*] /.test(l))) {
      const ul = el("ul");
      for (const l of lines) { const li = el("li"); inline(l.replace(/^\s*[-*] /, ""), li); ul.append(li); }
      out.push(ul);
    } else { const p = el("p"); inline(lines.join(" "), p); out.push(p); }
  }
  return out;
}

// labelCells names each cell of a row after its column's heading, which
// a phone's width shows before it (the table's rows become blocks).
function labelCells(tr, table) {
  const heads = [...document.querySelectorAll(table + " thead th")];
  [...tr.children].forEach((td, i) => { if (heads[i]) td.dataset.label = heads[i].textContent; });
}

// refocus gives the focus back to the element among sel whose data-id is
// id, after a reload rebuilt them (a live change must not take the
// keyboard's place away).
function refocus(sel, id) {
  if (!id) return;
  const e = [...document.querySelectorAll(sel)].find((x) => x.dataset.id === id);
  if (e) e.focus();
}

// showTor shows the node's "private network" (Tor) in the header: on or
// off, how far tor has bootstrapped, the node's onion address.
function showTor(tor) {
  const t = tor || {on: false};
  const box = $("#private");
  box.classList.toggle("on", !!t.on);
  $("#private .label").textContent = !t.on ? "Private network: off" :
    t.bootstrap < 100 ? "Private network (Tor): connecting " + t.bootstrap + "%" : "Private network (Tor): on";
  const bar = $("#tor-progress");
  bar.value = t.bootstrap || 0;
  bar.classList.toggle("hidden", !t.on || t.bootstrap >= 100);
  const onion = $("#onion");
  onion.textContent = t.on && t.onion ? t.onion + (t.reachable ? "" : " (publishing…)") : "";
  onion.title = t.on && t.onion ? "This node's onion address: other members' nodes reach it at http://" + t.onion : "";
  box.title = t.on ? "Every connection of this node goes through Tor: relays and other members do not learn its IP address." + (t.warning ? " Tor warns: " + t.warning : "") :
    "This node connects to relays directly: they see its IP address. `pursuance up --tor` goes through Tor.";
}

// joinWith joins with an invite code and shows the pursuance joined, on
// its board.
async function joinWith(code) {
  const r = await api("/join", {code});
  current = r.pursuance;
  $('#new-task select[name="visible_to"]').dataset.roles = ""; $('#invite select[name="role"]').dataset.roles = "";
  await loadPursuances();
  $('header nav button[data-view="board"]').click();
}

async function loadStatus() {
  const st = await api("/status").catch(() => ({}));
  showTor(st.tor);
  const bar = $("#progress");
  if (st.working && st.total) { bar.max = st.total; bar.value = st.done; bar.classList.remove("hidden"); } else bar.classList.add("hidden");
  // #status is a live region: it is written only when what it says
  // changes (a clock time, not "N s ago", which would be read out every
  // second).
  const say = (s) => { if ($("#status").textContent !== s) $("#status").textContent = s; };
  // A round's counts ("1200 of 50000") change every second: they go in
  // the progress bar and beside the live region, not in it.
  const count = (st.working || "").match(/^(.*?):? (\d+ of \d+)$/);
  $("#sync-count").textContent = count ? count[2] : "";
  bar.setAttribute("aria-valuetext", st.working || "");
  if (st.working) { say("syncing " + (count ? count[1] : st.working)); return; }
  if (!st.last) { say(""); return; }
  const last = new Date(st.last);
  $("#status").title = "Last sync ended " + last.toLocaleString();
  say("synced at " + last.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"}) + (st.down && st.down.length ? " · relays down: " + st.down.join(", ") : "") + (st.behind && st.behind.length ? " · relays behind or refilled: " + st.behind.join(", ") : "") + (st.missing ? " · " + st.missing + " events missing" : ""));
}

async function loadLog() {
  const log = await api("/p/" + current + "/log");
  // An author that signed two different events at one seq is shown first,
  // with the evidence: its events from there on are void for everyone.
  const forked = [...new Set(log.filter((e) => (e.reason || "").includes("signed two different events")).map((e) => e.author))];
  const eq = $("#equivocation");
  eq.textContent = forked.length ? "Equivocation: " + forked.join(", ") + " signed two different events at one place in their chain (a forked or stolen identity?). Their events from there on are void; the rejected rows below are the evidence." : "";
  eq.classList.toggle("hidden", forked.length === 0);
  $("#log tbody").replaceChildren(...log.reverse().map((e) => {
    const tr = el("tr");
    if ((e.reason || "").includes("signed two different events")) tr.className = "void";
    const verdict = el("td", e.status + (e.reason ? ": " + e.reason : "") + (e.note ? " (" + e.note + ")" : ""), e.status);
    tr.append(el("td", e.time), el("td", e.author), el("td", e.kind), verdict);
    labelCells(tr, "#log");
    return tr;
  }));
}

async function loadCharter() {
  const c = await api("/p/" + current + "/charter");
  $("#charter-yaml").value = c.yaml;
  $("#charter-errors").replaceChildren();
}

// permitForm is permit for a form: its submit button says why not, and
// its fields are disabled with it.
function permitForm(form, perm, key) {
  permit(form.querySelector("button[type=submit]"), perm, key);
  form.querySelectorAll("input, select, textarea").forEach((f) => { f.disabled = !perm.allowed; });
}

async function openDetail(id, quiet) {
  const ticket = quiet ? detailTicket : ++detailTicket; // a refresh's reload does not outrank a click
  try {
    const d = await api("/p/" + current + "/tasks/" + id);
    if (ticket !== detailTicket) return; // closed or replaced meanwhile
    openTask = id;
    $("#d-title").textContent = d.task.title;
    $("#d-meta").textContent = (d.task.origin ? "received by " : "by ") + d.task.creator + (d.task.visible_to.length ? " · visible to " + d.task.visible_to.join(", ") : " · every member") +
      (d.task.assignees.length ? " · assigned to " + d.task.assignees.join(", ") : "") + (d.task.due ? " · due " + d.task.due + (isOverdue(d.task) ? " · overdue" : "") : "") +
      (d.task.archived ? " · archived" : "");
    $("#d-meta").classList.toggle("overdue", isOverdue(d.task)); // calendar.js
    $("#d-archive").textContent = d.task.archived ? "Unarchive" : "Archive";
    $("#d-archive").dataset.archived = d.task.archived ? "1" : "";
    const ed = $("#d-edit");
    if (ed.classList.contains("hidden")) { // not while the user edits
      ed.title.value = d.task.title; ed.body.value = d.task.body; ed.due.value = d.task.due || "";
    }
    $("#d-body").replaceChildren(...markdown(d.task.body));
    const st = $("#d-status");
    if (document.activeElement !== st) { // do not pull it from under the user's hand
      st.replaceChildren(...info.statuses.map((s) => { const o = el("option", pretty(s)); o.value = s; return o; }));
      st.value = d.task.status;
    }
    // What the charter forbids this member is disabled, with the reason:
    // the node's verdict (d.may, app.Node.May), not the page's.
    permit($("#d-edit-open"), d.may.edit, "task-edit"); // governance.js
    if (!d.may.edit.allowed) $("#d-edit").classList.add("hidden");
    permit($("#d-archive"), d.may.archive, "task-archive");
    permit($("#d-status"), d.may.status, "task-status");
    permitForm($("#d-assign"), d.may.assign, "task-assign");
    permitForm($("#d-comment"), d.may.comment, "task-comment");
    renderLinkDetail(d); // links.js
    renderFilesDetail(d); // files.js
    $("#d-comments").replaceChildren(...d.comments.map((c) => { const li = el("li"), body = el("div", undefined, "markdown"); body.append(...markdown(c.text)); li.append(el("span", c.author + " ", "author"), el("span", c.time, "muted"), body); const fs = commentFiles(c); if (fs) li.append(fs); return li; }));
    const dlg = $("#detail");
    if (dlg.classList.contains("hidden")) { // a dialog: the focus goes in, and back on closing
      if (!dlg.contains(document.activeElement)) detailOpener = document.activeElement;
      dlg.classList.remove("hidden");
      $("#d-title").focus();
    }
  } catch (e) { if (!quiet) showError(e); }
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("header nav button").forEach((b) => b.onclick = async () => {
    document.querySelectorAll("header nav button").forEach((x) => x.classList.toggle("active", x === b));
    document.querySelectorAll(".view").forEach((v) => v.classList.toggle("hidden", v.id !== b.dataset.view));
    if (b.dataset.view !== "board" && b.dataset.view !== "tree") closeDetail(true);
    if ((b.dataset.view === "tree" || b.dataset.view === "calendar") && info) await refresh().catch(showError); // they show the whole list
    if (b.dataset.view === "log") await loadLog().catch(showError);
    if (b.dataset.view === "members" && info) await loadGovernance().catch(showError);
    if (b.dataset.view === "charter") await loadCharter().catch(showError);
    if (b.dataset.view === "profile") await loadProfile(true).catch(showError);
  });
  $("#pursuance").onchange = (e) => { current = e.target.value; $('#new-task select[name="visible_to"]').dataset.roles = ""; $('#invite select[name="role"]').dataset.roles = ""; $("#send-roles").dataset.roles = ""; $("#link-code").classList.add("hidden"); closeDetail(true); refresh().catch(showError); };
  $("#filter").onchange = () => refresh().catch((err) => showError(err, $("#filter")));
  $("#mine").onclick = () => { $("#filter").value = "@me"; refresh().catch(showError); };
  $("#all").onclick = () => { $("#filter").value = ""; refresh().catch(showError); };
  $("#close").onclick = () => closeDetail();
  $("#error-close").onclick = () => $("#error").classList.add("hidden");
  // The task panel is a modal dialog: Esc closes it, Tab stays in it.
  $("#detail").addEventListener("keydown", (e) => {
    if (e.key === "Escape") { e.preventDefault(); closeDetail(); return; }
    if (e.key !== "Tab") return;
    const f = [...$("#detail").querySelectorAll("button, input, select, textarea, a[href], [tabindex='0']")].filter((x) => !x.disabled && x.getClientRects().length > 0);
    if (f.length === 0) return;
    if (e.shiftKey && document.activeElement === f[0]) { e.preventDefault(); f[f.length - 1].focus(); } else if (!e.shiftKey && document.activeElement === f[f.length - 1]) { e.preventDefault(); f[0].focus(); }
  });
  $("#tree-expand").onclick = () => { collapsed.clear(); refresh().catch(showError); };
  $("#tree-collapse").onclick = () => { document.querySelectorAll("#tree-list [role=treeitem][aria-expanded]").forEach((li) => collapsed.add(li.dataset.id)); refresh().catch(showError); };
  $("#d-edit-open").onclick = () => { $("#d-edit").classList.remove("hidden"); $("#d-edit").title.focus(); };
  $("#d-edit-cancel").onclick = () => { $("#d-edit").classList.add("hidden"); openDetail(openTask, true); };
  $("#d-edit").onsubmit = async (e) => {
    e.preventDefault();
    const f = e.target;
    try {
      await api("/p/" + current + "/tasks/" + openTask + "/edit", {title: f.title.value, body: f.body.value, due: f.due.value});
      f.classList.add("hidden");
      await refresh();
    } catch (err) { showError(err); }
  };
  $("#d-archive").onclick = async () => {
    try { await api("/p/" + current + "/tasks/" + openTask + "/archive", {archived: !$("#d-archive").dataset.archived}); await refresh(); } catch (err) { showError(err); }
  };
  $("#new-task").onsubmit = async (e) => {
    e.preventDefault();
    const f = e.target;
    const body = {title: f.title.value, body: f.body.value, visible_to: f.visible_to.value ? [f.visible_to.value] : [], due: f.due.value};
    try { await api("/p/" + current + "/tasks", body); f.title.value = ""; f.body.value = ""; clearFieldError(f.title); await refresh(); } catch (err) { showError(err, f.title); }
  };
  $("#d-status").onchange = async (e) => {
    try { await api("/p/" + current + "/tasks/" + openTask + "/status", {status: e.target.value, report: reporting()}); await refresh(); } catch (err) { showError(err); }
  };
  $("#amend").onclick = async () => {
    try {
      const r = await api("/p/" + current + "/charter", {yaml: $("#charter-yaml").value});
      $("#charter-errors").replaceChildren(...(r.errors || []).map((e) => el("li", (e.line ? "line " + e.line + ": " : "") + e.message)));
      if (!r.errors || r.errors.length === 0) { say(r.proposed ? "Amendment proposed: others approve it." : "Charter amended."); await loadPursuances(); }
    } catch (err) { showError(err); }
  };
  $("#d-assign").onsubmit = async (e) => {
    e.preventDefault();
    if (!e.target.who.value) { showError(new Error("Pick a member or a role to assign the task to."), e.target.who); return; }
    try { await api("/p/" + current + "/tasks/" + openTask + "/assign", {who: e.target.who.value}); e.target.who.value = ""; clearFieldError(e.target.who); await refresh(); } catch (err) { showError(err, e.target.who); }
  };
  $("#add-relay").onsubmit = async (e) => {
    e.preventDefault();
    try {
      const r = await api("/p/" + current + "/relays", {add: e.target.url.value});
      if (r.proposed) say("Proposed: the charter asks a quorum; others approve it.");
      e.target.url.value = "";
      clearFieldError(e.target.url);
      await refresh();
    } catch (err) { showError(err, e.target.url); }
  };
  $("#invite").onsubmit = async (e) => {
    e.preventDefault();
    try {
      const r = await api("/p/" + current + "/invites", {role: e.target.role.value});
      $("#invite-code textarea").value = r.code;
      const img = $("#invite-code img");
      if (r.qr) { img.src = r.qr; img.classList.remove("hidden"); } else img.classList.add("hidden");
      $("#invite-reach").textContent = {
        "nowhere": "The code names no relay, so the newcomer cannot fetch the log with it: add a relay below and invite again.",
        "this-machine": "The code names only your node's relay on this machine (" + r.relays.join(", ") + "): it works for a member on this machine while your node runs. For members elsewhere, add a relay they can reach, below, and invite again.",
        "tor": "Needs Tor: the code names only onion services (" + r.relays.join(", ") + "). The newcomer joins with `pursuance --tor join CODE`, or runs `pursuance up --tor` and joins in its page.",
      }[r.reach] || "";
      $("#invite-code").classList.remove("hidden");
    } catch (err) { showError(err); }
  };
  $("#new-pursuance").onclick = async () => {
    const f = $("#found");
    const templates = await api("/templates").catch(showError);
    if (templates) {
      const custom = el("option", "my own charter (YAML)…"); custom.value = "";
      f.template.replaceChildren(...templates.map((t) => el("option", t)), custom);
      f.template.onchange = () => {
        f.charter.classList.toggle("hidden", f.template.value !== "");
        $("#found-charter-label").classList.toggle("hidden", f.template.value !== "");
        $("#charter-file").classList.toggle("hidden", f.template.value !== "");
      };
      // A charter file is read here, in the page, into the text box, where
      // it can be checked and changed before founding.
      $("#charter-file input").onchange = async (e) => {
        const file = e.target.files[0];
        if (file) f.charter.value = await file.text();
      };
    }
    f.classList.toggle("hidden");
    f.name.focus();
  };
  $("#found").onsubmit = async (e) => {
    e.preventDefault();
    const f = e.target;
    if (!f.name.value.trim()) { showError(new Error("Give the new pursuance a name."), f.name); return; }
    try {
      const r = await api("/pursuances", {name: f.name.value, template: f.template.value, charter: f.template.value === "" ? f.charter.value : ""});
      if (r.asked) { // a linked device: its root founds (docs/devices.md §8)
        f.name.value = ""; clearFieldError(f.name); f.classList.add("hidden");
        say("Asked your root home to found it: it does at its next sync, and the pursuance reaches this device at its own.");
        return;
      }
      current = r.pursuance; f.name.value = ""; clearFieldError(f.name); f.classList.add("hidden");
      $('#new-task select[name="visible_to"]').dataset.roles = ""; $('#invite select[name="role"]').dataset.roles = "";
      await loadPursuances();
    } catch (err) { showError(err, f.template.value === "" ? f.charter : f.name); }
  };
  $("#join").onclick = async () => {
    const f = $("#found");
    try { await joinWith(f.code.value.trim()); f.code.value = ""; clearFieldError(f.code); f.classList.add("hidden"); } catch (err) { showError(err, f.code); }
  };
  $("#sync").onclick = async () => {
    if (!current) return;
    try { const r = await api("/p/" + current + "/sync", {}); $("#sync").title = "Last sync: " + r.received + " received, " + r.sent + " sent" + (r.errors ? "; " + r.errors : ""); await refresh(); } catch (err) { showError(err); }
  };
  $("#d-comment").onsubmit = async (e) => {
    e.preventDefault();
    // The comment first, then its files (files.js's upload, with a bar),
    // each attached to it by its ID.
    const input = $("#d-comment-file"), files = [...input.files];
    try {
      const r = await api("/p/" + current + "/tasks/" + openTask + "/comments", {text: e.target.text.value, report: reporting()});
      e.target.text.value = ""; input.value = ""; clearFieldError(e.target.text);
      if (files.length) await upload(files, r.id);
      await refresh();
    } catch (err) { showError(err, e.target.text); }
  };
  if (!token) { lockOut(); return; }
  loadPursuances().catch(showError);
  // Others' changes appear without reload: the node says when something
  // came in; a slow poll covers a dropped stream.
  follow();
  setInterval(() => { if (!locked) liveRefresh(); }, 30000);
  setInterval(() => { if (!locked) loadStatus(); }, 1000); // a long catch-up shows its progress
});

// follow reads the node's stream of server-sent events (GET /api/live)
// with fetch, which, unlike EventSource, sends the session's token, and
// reloads what the page shows on every "change". After a dropped stream it
// connects again, and reloads, as something may have changed meanwhile.
async function follow() {
  for (let first = true; !locked; first = false) {
    try {
      const r = await fetch("/api/live", {headers: {"X-Pursuance-Token": token}});
      if (r.status === 401) { lockOut(); return; }
      if (!first) liveRefresh();
      const rd = r.body.getReader(), dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const {value, done} = await rd.read();
        if (done) break;
        buf += dec.decode(value, {stream: true});
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          if (buf.slice(0, i).split("\n").includes("data: change")) liveRefresh();
          buf = buf.slice(i + 2);
        }
      }
    } catch (err) { /* the node stopped or restarted: try again */ }
    await new Promise((res) => setTimeout(res, 2000));
  }
}
