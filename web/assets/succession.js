"use strict";
// Succession in the UI (docs/succession.md, docs/web.md "Succession"): in
// the Members view, a Claim button for each role the charter lets this
// member take over, and a Complete button for each of its own open
// claims. Each is enabled only when the rules would accept it now, and
// otherwise disabled with the rules' reason beside it. Uses app.js's api,
// el, $, current, showError, refresh and links.js's say.

// loadSuccession fills #succession-actions for the current pursuance.
async function loadSuccession() {
  if (!current) return;
  const p = current;
  const r = await api("/p/" + p + "/succession");
  if (p !== current) return;
  const items = [];
  const row = (label, ok, why, run) => {
    const li = el("li", undefined, "succession-action");
    const b = el("button", label);
    b.type = "button";
    b.disabled = !ok;
    li.append(b);
    if (!ok) {
      const reason = el("span", " Not now: " + why, "muted");
      reason.id = "why-" + items.length;
      b.setAttribute("aria-describedby", reason.id);
      li.append(reason);
    }
    b.onclick = async () => {
      b.disabled = true;
      try { await run(); await refresh(); } catch (err) { showError(err); b.disabled = false; }
    };
    items.push(li);
  };
  for (const c of r.claimable) {
    row((c.proposed ? "Propose taking over " : "Claim ") + c.role, c.ok, c.why, async () => {
      const x = await api("/p/" + p + "/succession/claim", {role: c.role});
      say(x.proposed ? "Proposed: the charter asks a quorum of active members; others approve it." :
        "Claimed " + c.role + ". Complete it here after the waiting period, unless a holder signs anything first.");
    });
  }
  for (const c of r.completable) {
    row("Complete the claim on " + c.role, c.ok, c.why, async () => {
      await api("/p/" + p + "/succession/complete", {claim: c.claim});
      say("You hold " + c.role + " now.");
    });
  }
  $("#succession-actions").replaceChildren(...items);
}
