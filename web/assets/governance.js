"use strict";
// Governance in the page (docs/web.md, Governance): the open proposals
// with their quorum and expiry, approving them, the pending invites and
// revoking them, the roles and what they are for, leaving, and on the
// members' rows only what this member may do. What it may do is the
// node's answer (GET /api/p/{p}/governance), the rules' own verdict on the
// event it would sign: the page computes no permission itself.

let gov = null;

// loadGovernance fetches what this member may do and shows it; app.js
// calls it at every refresh, after drawing the members' rows.
async function loadGovernance() {
  gov = await api("/p/" + current + "/governance");
  renderProposals();
  renderPendingInvites();
  renderRoles();
  decorateMembers();
  decorateInviteForm();
  permit($("#leave"), gov.leave, "leave");
}

// permit enables button when perm allows it; else disables it and says why
// beside it (a disabled button takes no focus: its reason is in the text,
// and the button is described by it). A proposed action says so.
function permit(button, perm, key) {
  const id = "why-" + key;
  let why = document.getElementById(id);
  if (!why) { why = el("span", "", "why muted small"); why.id = id; button.after(why); }
  button.disabled = !perm.allowed;
  why.textContent = !perm.allowed ? "Not allowed: " + perm.reason : perm.proposed ? "Proposed: takes effect with " + perm.needed + " approvals" : "";
  if (why.textContent) button.setAttribute("aria-describedby", id); else button.removeAttribute("aria-describedby");
}

function fmtDate(rfc) { return rfc ? rfc.slice(0, 10) : ""; }

async function govDo(path, done) {
  try { const r = await api("/p/" + current + path, {}); say(done(r)); await refresh(); } catch (err) { showError(err); }
}

function renderProposals() {
  const list = $("#proposals");
  const open = gov.proposals.filter((p) => !p.expired);
  list.replaceChildren(...(open.length ? open.map((p) => {
    const li = el("li", undefined, "proposal");
    li.dataset.id = p.id;
    li.append(el("strong", p.author + " proposes to " + p.what));
    const bar = el("progress");
    bar.max = p.needed; bar.value = Math.min(p.approvals.length, p.needed);
    bar.setAttribute("aria-label", "Approvals of: " + p.what);
    const count = p.approvals.length + " of " + p.needed + " approvals (" + p.approvals.join(", ") + ")";
    bar.setAttribute("aria-valuetext", count);
    li.append(el("div", undefined, "quorum"));
    li.lastChild.append(bar, el("span", " " + count, "quorum-count"));
    li.append(el("div", p.expires ? "Expires " + fmtDate(p.expires) + " (by the members' clocks)" : "Never expires", "muted small"));
    if (p.approved) li.append(el("span", "You approved it.", "muted"));
    else {
      const b = el("button", "Approve");
      b.type = "button";
      b.onclick = () => govDo("/proposals/" + p.id + "/approve", (r) => r.carried ? "Approved: the quorum is met, it took effect." : "Approved: it waits for more approvals.");
      li.append(b);
      permit(b, p.approve, "approve-" + p.id.slice(0, 16));
    }
    return li;
  }) : [el("li", "No open proposals.", "muted")]));
  const expired = gov.proposals.length - open.length;
  $("#proposals-expired").textContent = expired ? expired + (expired === 1 ? " proposal" : " proposals") + " expired without enough approvals." : "";
}

function renderPendingInvites() {
  $("#pending-invites").replaceChildren(...(gov.invites.length ? gov.invites.map((i) => {
    const li = el("li", "Into " + i.role + ", by " + i.by + " · " + (i.uses ? i.used + " of " + i.uses + " used" : i.used + " used, no limit") +
      " · " + (i.expires ? "expires " + fmtDate(i.expires) : "never expires") + " (" + i.id.slice(0, 12) + ") ");
    li.dataset.id = i.id;
    const b = el("button", "Revoke", "danger");
    b.type = "button";
    b.onclick = () => { if (window.confirm("Revoke this invite? Its code admits nobody more, and the keys it carried are rotated.")) govDo("/invites/" + i.id + "/revoke", () => "Invite revoked."); };
    li.append(b);
    permit(b, i.revoke, "revoke-" + i.id.slice(0, 16));
    return li;
  }) : [el("li", "No pending invites.", "muted")]));
}

function renderRoles() {
  $("#role-list").replaceChildren(...gov.roles.flatMap((r) => [el("dt", r.name), el("dd", r.description || "(no description in the charter)")]));
}

// verified is this browser's record of the fingerprints the member
// compared (localStorage: the home has no such mark yet). A mark is on
// the fingerprint, so a member whose keys change is unmarked.
function verifiedSet() { try { return new Set(JSON.parse(localStorage.getItem("pursuance-verified") || "[]")); } catch (e) { return new Set(); } }
function setVerified(fp, on) {
  const s = verifiedSet();
  if (on) s.add(fp); else s.delete(fp);
  localStorage.setItem("pursuance-verified", JSON.stringify([...s]));
}

// decorateMembers enables, disables (with the reason) or drops the
// controls on each member's row, and marks verified fingerprints.
function decorateMembers() {
  for (const tr of document.querySelectorAll("#members tbody tr[data-member]")) {
    const id = tr.dataset.member, may = gov.members[id] || {give: {}, take: {}};
    const m = info.members.find((x) => x.id === id);
    const act = tr.querySelector("td.actions"), sel = act.querySelector("select");
    const give = act.querySelector("[data-act=give]"), take = act.querySelector("[data-act=take]"), rm = act.querySelector("[data-act=remove]");
    if (!act || !sel || !give || !take) continue;
    // Two refreshes may overlap: a row is decorated once or twice, the same way.
    if (id === gov.me) { if (rm) rm.remove(); tr.classList.add("me"); } else if (rm) permit(rm, may.remove, "remove-" + id.slice(0, 16));
    const roleCheck = () => {
      const r = sel.value;
      give.hidden = !(r in may.give); take.hidden = !(r in may.take);
      permit(give, may.give[r] || {allowed: false, reason: ""}, "give-" + id.slice(0, 16));
      permit(take, may.take[r] || {allowed: false, reason: ""}, "take-" + id.slice(0, 16));
      if (give.hidden) document.getElementById("why-give-" + id.slice(0, 16)).textContent = "";
      if (take.hidden) document.getElementById("why-take-" + id.slice(0, 16)).textContent = "";
    };
    sel.onchange = roleCheck;
    roleCheck();
    const fp = tr.querySelector("td.fp");
    if (!m || !fp || id === gov.me || fp.querySelector("button")) continue; // one's own fingerprint is not compared with oneself
    const mark = el("span", "", "verified");
    const b = el("button", "", "small");
    b.type = "button";
    const draw = () => {
      const on = verifiedSet().has(m.fingerprint);
      mark.textContent = on ? "✓ Verified" : "";
      b.textContent = on ? "Unmark" : "Mark verified";
      b.setAttribute("aria-label", (on ? "Unmark " : "Mark verified: ") + m.name);
    };
    b.onclick = () => {
      const on = verifiedSet().has(m.fingerprint);
      if (!on && !window.confirm("Did " + m.name + " read you this same fingerprint, from their own `pursuance id show`, over a channel you trust (in person, a call)?\n\n" + m.fingerprint)) return;
      setVerified(m.fingerprint, !on);
      draw();
    };
    draw();
    fp.append(" ", mark, " ", b);
  }
}

// decorateInviteForm offers the roles this member may invite into, the
// least-privileged first chosen, and says why the others are not.
function decorateInviteForm() {
  const f = $("#invite"), sel = f.role;
  const byName = new Map(gov.roles.map((r) => [r.name, r]));
  for (const o of sel.options) {
    const r = byName.get(o.value);
    if (!r) continue;
    o.disabled = !r.invite.allowed;
    o.textContent = r.name + (r.invite.allowed ? "" : " (not allowed)");
    o.title = r.description + (r.invite.allowed ? "" : " — " + r.invite.reason);
  }
  if (!sel.dataset.picked || sel.selectedOptions[0] && sel.selectedOptions[0].disabled) sel.value = gov.invite_default;
  sel.onchange = () => { sel.dataset.picked = "1"; };
  const none = !gov.invite_default;
  permit(f.querySelector("button[type=submit]"), none ? {allowed: false, reason: "the charter lets none of your roles invite"} : {allowed: true}, "invite");
}

document.addEventListener("DOMContentLoaded", () => {
  $("#leave").onclick = () => {
    if (!window.confirm("Leave this pursuance? You read nothing written after you leave; to come back you need a new invite.")) return;
    govDo("/leave", () => "You left the pursuance.");
  };
});
