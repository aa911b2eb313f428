"use strict";
// The inbox: what asks for the member's attention, computed by the node
// from the log (GET /api/p/P/inbox, package activity), unread since the
// member's last visit, which the node keeps in the home (POST
// /api/p/P/inbox/seen). An unread count on the Inbox button; desktop
// notifications when the member turns them on. Uses app.js's api, el, $,
// current, showError, afterRefresh.

const inboxWhy = {
  assigned: "Assigned to you",
  mention: "Mentions you",
  reply: "On a task you follow",
  handed: "Handed to this pursuance",
  joined: "Joined",
  approve: "Waits for your approval",
};

// The Inbox button and view, made here before app.js wires the nav.
(() => {
  const b = el("button", "Inbox");
  b.dataset.view = "inbox";
  b.id = "inbox-open";
  const badge = el("span", "", "badge hidden");
  badge.id = "inbox-badge";
  b.append(" ", badge);
  document.querySelector("header nav").prepend(b);
  const sec = el("section", undefined, "view hidden");
  sec.id = "inbox";
  sec.innerHTML = `<h2 id="inbox-h">Inbox</h2>
    <p class="muted">What concerns you since your last visit: tasks assigned to you or your roles, mentions (@your name), answers on tasks you created, commented on or hold, tasks handed to this pursuance, newcomers, and proposals waiting for your approval. Computed on this machine from the pursuance's log.</p>
    <div class="toolbar"><span id="inbox-count" role="status"></span>
      <label class="check"><input type="checkbox" id="inbox-desktop"> Desktop notifications</label></div>
    <ul id="inbox-requests" class="entries" aria-label="Join requests"></ul>
    <ul id="inbox-list" class="entries" aria-labelledby="inbox-h"></ul>`;
  $("#board").before(sec);
})();

let inboxUnread = 0;
const inboxTold = new Set(); // notices already shown as desktop notifications

// taskLink is a link to a task's address (routes.js).
function taskLink(task, text) {
  const a = el("a", text);
  a.href = "#/p/" + current + "/task/" + task;
  return a;
}

// loadInbox reloads the count, and the list when the inbox is shown.
async function loadInbox() {
  if (!current) return;
  const r = await api("/p/" + current + "/inbox");
  inboxUnread = r.unread;
  const badge = $("#inbox-badge");
  badge.textContent = r.unread ? String(r.unread) : "";
  badge.classList.toggle("hidden", !r.unread);
  $("#inbox-open").setAttribute("aria-label", "Inbox" + (r.unread ? ", " + r.unread + " unread" : ""));
  notifyDesktop(r.notices.filter((n) => n.unread));
  if ($("#inbox").classList.contains("hidden")) return r;
  $("#inbox-count").textContent = r.unread ? r.unread + " new since your last visit" : "Nothing new since your last visit.";
  $("#inbox-list").replaceChildren(...(r.notices.length ? r.notices.map((n) => {
    const li = el("li", undefined, "entry notice" + (n.unread ? " unread" : ""));
    const head = el("p", undefined, "why");
    head.append(el("strong", inboxWhy[n.why] || n.why));
    if (n.unread) head.append(" ", el("span", "new", "new"));
    const what = el("p");
    what.append(n.task ? taskLink(n.task, n.sentence) : n.sentence);
    li.append(head, what, el("p", new Date(n.time).toLocaleString(), "muted small"));
    return li;
  }) : [el("li", "Nothing here yet.", "entry")]));
  return r;
}

// loadInboxRequests lists the join requests waiting for an answer, for a
// holder of the intake role of a pursuance with a public profile. They
// are read from the relays (GET /api/p/P/requests), so only when the
// inbox is opened, not at every reload; for everyone else the node says
// there are none to read, and the list stays empty.
async function loadInboxRequests() {
  const box = $("#inbox-requests");
  let reqs = [];
  try { reqs = (await api("/p/" + current + "/requests")).filter((q) => q.status === "waiting"); } catch (err) { /* no profile, or not an intake holder */ }
  box.replaceChildren(...(reqs.length ? [(() => {
    const li = el("li", undefined, "entry notice unread");
    const head = el("p", undefined, "why");
    head.append(el("strong", "Join requests"));
    const a = el("a", reqs.length + (reqs.length === 1 ? " request to join waits" : " requests to join wait") + " for an answer: " + reqs.map((q) => q.name).join(", "));
    a.href = "#/p/" + current + "/profile";
    const what = el("p");
    what.append(a);
    li.append(head, what);
    return li;
  })()] : []));
}

// showInbox loads the inbox and marks the visit: what it lists stays
// marked new on the page until the next visit.
async function showInbox() {
  try {
    loadInboxRequests();
    const r = await loadInbox();
    if (r && r.unread) { await api("/p/" + current + "/inbox/seen", {}); inboxUnread = 0; $("#inbox-badge").classList.add("hidden"); $("#inbox-open").setAttribute("aria-label", "Inbox"); }
  } catch (err) { showError(err); }
}

// notifyDesktop shows a desktop notification of unread notices not told
// yet, when the member turned them on and the page is not in front.
function notifyDesktop(unread) {
  const fresh = unread.filter((n) => !inboxTold.has(n.id));
  fresh.forEach((n) => inboxTold.add(n.id));
  if (!fresh.length || localStorage.getItem("pursuance-notify") !== "on" || !("Notification" in window) || Notification.permission !== "granted" || !document.hidden) return;
  const n = new Notification(fresh.length === 1 ? "Pursuance" : "Pursuance: " + fresh.length + " new", {body: fresh[0].sentence, tag: "pursuance-inbox"});
  n.onclick = () => { window.focus(); $("#inbox-open").click(); };
}

document.addEventListener("DOMContentLoaded", () => {
  $("#inbox-open").addEventListener("click", showInbox);
  afterRefresh.push(() => loadInbox().catch(() => {}));
  const box = $("#inbox-desktop");
  box.checked = localStorage.getItem("pursuance-notify") === "on" && "Notification" in window && Notification.permission === "granted";
  if (!("Notification" in window)) { box.disabled = true; box.parentElement.title = "This browser has no desktop notifications"; }
  box.onchange = async () => {
    if (!box.checked) { localStorage.removeItem("pursuance-notify"); return; }
    const p = await Notification.requestPermission();
    if (p !== "granted") { box.checked = false; showError(new Error("The browser did not allow notifications: allow them for this page in its settings, then tick the box again."), box); return; }
    localStorage.setItem("pursuance-notify", "on");
    // What is unread now was listed on this page: only later notices notify.
  };
});
