"use strict";
// The activity feed: the log as sentences ("Bob moved 'Verify the memo'
// to Done"), each linked to its task, newest first, filtered by member and
// kind; the verdict shows only on a rejected event, with why. The raw
// audit log (app.js's loadLog) is one click away. The sentences are the
// node's (GET /api/p/P/activity, package activity), the same the CLI's
// `log` prints. Uses app.js's api, el, $, current, showError, afterRefresh,
// labelCells and inbox.js's taskLink.

(() => {
  const log = $("#log");
  const box = el("div");
  box.id = "feed-box";
  box.innerHTML = `<h2 id="feed-h">Activity</h2>
    <form id="feed-filter" class="toolbar">
      <label>Member <select name="member"><option value="">Everyone</option></select></label>
      <label>Kind <select name="kind"><option value="">Everything</option><option value="tasks">Task changes</option></select></label>
      <button type="button" id="raw-log" aria-expanded="false" aria-controls="raw-log-box">Show the raw audit log</button>
    </form>
    <ol id="feed" class="feed" aria-labelledby="feed-h"></ol>`;
  const raw = el("div", undefined, "hidden");
  raw.id = "raw-log-box";
  raw.append(el("h2", "Audit log: every event, with the rules' verdict"));
  const table = log.querySelector("table");
  table.before(box);
  raw.append(table);
  box.after(raw);
})();

// loadFeed reloads the feed when the Activity view is shown.
async function loadFeed() {
  if (!current || $("#log").classList.contains("hidden")) return;
  const f = $("#feed-filter");
  const q = new URLSearchParams({member: f.member.value, kind: f.kind.value});
  const r = await api("/p/" + current + "/activity?" + q);
  const fill = (sel, values, keep) => {
    const have = [...sel.options].slice(keep).map((o) => o.value).join("\n");
    if (have === values.join("\n")) return;
    const was = sel.value;
    [...sel.options].slice(keep).forEach((o) => o.remove());
    sel.append(...values.map((v) => { const o = el("option", v.replace(/-/g, " ")); o.value = v; return o; }));
    sel.value = values.includes(was) || [...sel.options].some((o) => o.value === was) ? was : "";
  };
  fill(f.member, r.members, 1);
  fill(f.kind, r.kinds, 2);
  $("#feed").replaceChildren(...(r.lines.length ? r.lines.map((l) => {
    const li = el("li", undefined, l.rejected ? "rejected" : "");
    li.append(l.task ? taskLink(l.task, l.sentence) : l.sentence);
    const when = el("time", " " + new Date(l.time).toLocaleString(), "muted small");
    when.dateTime = l.time;
    li.append(when);
    if (l.rejected) li.append(el("p", "Rejected: " + l.reason, "verdict"));
    return li;
  }) : [el("li", "Nothing matches.", "muted")]));
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelector('header nav button[data-view="log"]').addEventListener("click", () => loadFeed().catch(showError));
  afterRefresh.push(() => loadFeed().catch(() => {}));
  $("#feed-filter").onchange = () => loadFeed().catch(showError);
  $("#raw-log").onclick = () => {
    const b = $("#raw-log"), open = b.getAttribute("aria-expanded") !== "true";
    b.setAttribute("aria-expanded", String(open));
    b.textContent = open ? "Hide the raw audit log" : "Show the raw audit log";
    $("#raw-log-box").classList.toggle("hidden", !open);
  };
});
