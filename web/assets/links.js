"use strict";
// Links between pursuances in the UI (docs/links.md): the Links view
// (this pursuance's ID, its links, offering and accepting one, ending
// one), a received task's origin with the verdict on its sender, handing
// a task off, and what came back of a hand-off. Uses app.js's api, el, $,
// current and info.

let links = []; // the links of the current pursuance (GET /links)
const reportTasks = new Set(); // received tasks whose changes this page reports back: the member's choice, per task

// copyText copies text, and says so on the button; where the clipboard
// is refused, it selects the text for the member to copy.
async function copyText(text, button, select) {
  const was = button.dataset.label || button.textContent;
  button.dataset.label = was;
  try { await navigator.clipboard.writeText(text); button.textContent = "Copied"; } catch (err) { if (select) select(); button.textContent = "Selected: copy it"; }
  setTimeout(() => { button.textContent = was; }, 2500);
}

const short = (id) => (id || "").slice(0, 12);

// peerName is how a link's or origin's other pursuance is named: its name
// once its history came, else its ID.
function peerName(name, id) { return name || (id ? "pursuance " + short(id) + "…" : "a pursuance not known yet"); }

async function loadLinks() {
  if (!current || !info) return;
  links = await api("/p/" + current + "/links");
  $("#my-id").textContent = info.pursuance;
  const body = $("#links-table tbody");
  body.replaceChildren(...links.map((l) => {
    const tr = el("tr");
    const cell = (label, text) => { const td = el("td", text); td.dataset.label = label; return td; };
    const state = l.state === "ended" ? (l.ended_by === "here" ? "ended by this pursuance" : "ended by the other side") :
      l.state === "waiting" ? "waiting for the other side to accept" : "open";
    const act = cell("Change");
    if (l.state !== "ended") {
      const end = el("button", "End link", "danger");
      end.type = "button";
      end.setAttribute("aria-label", "End the link with " + peerName(l.name, l.pursuance));
      end.onclick = async () => {
        if (!window.confirm("End the link with " + peerName(l.name, l.pursuance) + "? No task goes over it any more, either way; a new link needs a new code.")) return;
        try { const r = await api("/p/" + current + "/links/" + l.link + "/end", {}); if (r.proposed) say("Proposed: the charter asks a quorum to end links; others approve it."); await refresh(); } catch (err) { showError(err); }
      };
      act.append(end);
    }
    tr.dataset.link = l.link;
    tr.append(cell("Other pursuance", peerName(l.name, l.pursuance)),
      cell("Direction", l.direction === "out" ? "this pursuance sends to it" : "it sends to this pursuance"),
      cell("Roles", (l.direction === "out" ? "sent by: " : "arrive for: ") + l.roles.join(", ")),
      cell("State", state), act);
    tr.classList.toggle("ended", l.state === "ended");
    return tr;
  }));
  $("#no-links").classList.toggle("hidden", links.length > 0);
  $("#links-table").classList.toggle("hidden", links.length === 0);
  // The roles to offer and accept with follow the charter; what the
  // member ticked stays.
  const roles = info.roles.join("\n"), box = $("#send-roles");
  if (box.dataset.roles !== roles) {
    const ticked = new Set([...box.querySelectorAll("input:checked")].map((i) => i.value));
    box.replaceChildren(...info.roles.map((r) => {
      const lab = el("label"), cb = el("input");
      cb.type = "checkbox"; cb.name = "send_roles"; cb.value = r; cb.checked = ticked.has(r);
      lab.append(cb, document.createTextNode(" " + r));
      return lab;
    }));
    box.dataset.roles = roles;
    const sel = $('#link-accept select[name="deliver_to"]'), was = sel.value;
    sel.replaceChildren(...info.roles.map((r) => el("option", r)));
    if (info.roles.includes(was)) sel.value = was;
  }
}

// handoffTargets are the links this member may hand a task off over:
// offered by this pursuance, open, to a pursuance it knows, with a sending
// role this member holds. (The node checks again; so does every member of
// the other side.)
// d.may_handoff is the node's verdict on each (app.Node.MayHandoff): the
// page computes no permission itself.
function handoffTargets(d) {
  return links.filter((l) => l.direction === "out" && l.state === "open" && l.pursuance && (d.may_handoff[l.pursuance] || {}).allowed);
}

// originLine says where a received task came from.
function originLine(o) {
  return "From " + peerName(o.name, o.pursuance) + (o.role ? " (role " + o.role + ")" : "") + ", sent by " + (o.sender_name || "member " + short(o.sender) + "…");
}

const verdictWord = {verified: "Verified", pending: "Pending", invalid: "Invalid"};

// originBadge is the short form on a card: where from, and the verdict
// in words (not only in colour).
function originBadge(o) {
  return el("div", "from " + peerName(o.name, o.pursuance) + " · " + (verdictWord[o.verdict] || o.verdict), "origin-badge " + o.verdict);
}

// renderOrigin shows, in the task panel, where a received task came from
// and the verdict this member reached on its sender, with what it means.
function renderOrigin(o) {
  const box = $("#d-origin");
  box.classList.toggle("hidden", !o);
  if (!o) { box.replaceChildren(); return; }
  box.className = "origin " + o.verdict;
  const from = peerName(o.name, o.pursuance), who = o.sender_name || "the sender";
  const explain = {
    verified: "Checked by your node against " + from + "'s own rules: " + who + " held the role " + o.role + " there when sending.",
    pending: "Not verified yet: " + (o.reason || "waiting for " + from + "'s history") + ". It is checked again as " + from + "'s history arrives (a sync brings it); do not take it as " + from + "'s until then.",
    invalid: "Not a task of " + from + " by its rules: " + (o.reason || "the sender was not entitled to send it") + ". Treat it with suspicion; ending the link stops more.",
  }[o.verdict] || o.reason;
  const head = el("p");
  head.append(el("strong", (verdictWord[o.verdict] || o.verdict) + ": ", "verdict"), document.createTextNode(originLine(o)));
  box.replaceChildren(head, el("p", explain, "small"));
}

// renderLinkDetail shows the link parts of the task panel: the origin,
// the choice to report back, handing off, and the hand-offs made with
// what came back.
function renderLinkDetail(d) {
  const t = d.task, o = t.origin;
  renderOrigin(o);
  const rep = $("#d-report-label");
  rep.classList.toggle("hidden", !o);
  if (o) {
    rep.querySelector("span").textContent = peerName(o.name, o.pursuance);
    $("#d-report").checked = reportTasks.has(t.id);
    $("#d-report").onchange = (e) => { if (e.target.checked) reportTasks.add(t.id); else reportTasks.delete(t.id); };
  }
  const targets = o ? [] : handoffTargets(d); // a received task is not passed on
  const form = $("#d-handoff"), sel = form.querySelector("select");
  form.classList.toggle("hidden", targets.length === 0);
  if (document.activeElement !== sel) {
    const was = sel.value;
    sel.replaceChildren(...targets.map((l) => { const op = el("option", peerName(l.name, l.pursuance)); op.value = l.pursuance; return op; }));
    if (targets.some((l) => l.pursuance === was)) sel.value = was;
  }
  // A link this member could send over, ended: say so, and what to do,
  // instead of only no longer offering it.
  const ended = o ? [] : links.filter((l) => l.direction === "out" && l.state === "ended" && l.pursuance && l.roles.some((r) => info.my_roles.includes(r)) && !targets.some((x) => x.pursuance === l.pursuance));
  const note = $("#d-handoff-note");
  note.textContent = ended.map((l) => {
    const name = peerName(l.name, l.pursuance);
    return "No hand-off to " + name + ": " + (l.ended_by === "here" ? "this pursuance" : name) + " ended the link. To send it tasks again, offer a new link in the Links view and have its members accept the code.";
  }).join(" ");
  note.classList.toggle("hidden", ended.length === 0);
  const hs = d.handoffs || [];
  const list = $("#d-handoffs");
  list.replaceChildren();
  if (hs.length === 0) return;
  list.append(el("h3", "Handed off"));
  const ul = el("ul", undefined, "handoffs");
  for (const h of hs) {
    const li = el("li");
    li.append(el("strong", "To " + peerName(h.name, h.to) + ": "),
      el("span", (verdictWord[h.verdict] || h.verdict) + (h.reason && h.verdict !== "verified" ? " (" + h.reason + ")" : ""), "verdict " + h.verdict),
      document.createTextNode(" · " + (h.received ? "received there" : "not received there yet")));
    if (h.reports.length) {
      const ol = el("ol", undefined, "reports");
      for (const r of h.reports) {
        const what = [r.status ? "status " + pretty(r.status) : "", r.comment ? "“" + r.comment + "”" : ""].filter(Boolean).join(", ");
        const item = el("li");
        item.append(el("span", (r.name || "a member") + ": " + what + " "), el("span", "(" + (verdictWord[r.verdict] || r.verdict) + (r.verdict !== "verified" && r.reason ? ": " + r.reason : "") + ")", "verdict " + r.verdict));
        ol.append(item);
      }
      li.append(ol);
    } else li.append(el("div", "Nothing reported back yet.", "muted small"));
    ul.append(li);
  }
  list.append(ul);
}

// reporting says whether a change of the open task goes back to the
// pursuance it came from.
function reporting() {
  return !$("#d-report-label").classList.contains("hidden") && $("#d-report").checked;
}

document.addEventListener("DOMContentLoaded", () => {
  $("#copy-id").onclick = (e) => copyText($("#my-id").textContent, e.target, () => window.getSelection().selectAllChildren($("#my-id")));
  $("#copy-link-code").onclick = (e) => { const ta = $("#link-code textarea"); copyText(ta.value, e.target, () => ta.select()); };
  $("#link-create").onsubmit = async (e) => {
    e.preventDefault();
    const f = e.target;
    const roles = [...f.querySelectorAll('input[name="send_roles"]:checked')].map((i) => i.value);
    try {
      const r = await api("/p/" + current + "/links", {to: f.to.value.trim(), send_roles: roles});
      $("#link-code textarea").value = r.code;
      $("#link-code").classList.remove("hidden");
      $("#link-code textarea").focus();
      $("#link-code textarea").select();
      $("#error").classList.add("hidden"); // an earlier refusal is answered
      if (r.proposed) say("Link proposed: the charter asks a quorum; it works once others approve. The code can go out now.");
      f.to.value = "";
      clearFieldError(f.to); clearFieldError(f.querySelector('input[name="send_roles"]') || f.to);
      await refresh();
    } catch (err) { showError(err, /role/i.test(err.message) && f.querySelector('input[name="send_roles"]') || f.to); }
  };
  $("#link-accept").onsubmit = async (e) => {
    e.preventDefault();
    const f = e.target;
    try {
      const r = await api("/p/" + current + "/links/accept", {code: f.code.value.trim(), deliver_to: f.deliver_to.value});
      say(r.proposed ? "Accepting the link is proposed: the charter asks a quorum." : "Link accepted: tasks sent over it arrive for " + f.deliver_to.value + ".");
      f.code.value = "";
      clearFieldError(f.code); clearFieldError(f.deliver_to);
      await refresh();
    } catch (err) { showError(err, /deliver|arrive|role/i.test(err.message) && !/code/i.test(err.message) ? f.deliver_to : f.code); }
  };
  $("#d-handoff").onsubmit = async (e) => {
    e.preventDefault();
    const sel = e.target.querySelector("select");
    const to = sel.selectedOptions[0] ? sel.selectedOptions[0].textContent : "";
    try {
      await api("/p/" + current + "/tasks/" + openTask + "/handoff", {to: sel.value});
      say("Handed off to " + to + ": its members see it, with its origin, once their nodes sync.");
      clearFieldError(sel);
      await refresh();
    } catch (err) { showError(err, sel); }
  };
});
