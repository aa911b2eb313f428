"use strict";
// Public profiles, a relay's directory and join requests in the UI
// (docs/directory.md, docs/web.md "Profiles and join requests"): per
// pursuance, the Profile view (the public profile, publishing and
// withdrawing it; the requests to join, answered with an invite or a
// refusal); at the home's level, the Discover page (searching a relay's
// directory, asking to join, the answers, joining with an invite). Uses
// app.js's api, el, $, current, info, showError, refresh, joinWith and
// links.js's say.

let profileNow = null; // GET /p/{p}/profile of the current pursuance
let profileFormFor = ""; // the pursuance whose profile the form was filled from
const visible = (id) => !document.getElementById(id).classList.contains("hidden");

// when says a time in the member's own words and zone.
function when(iso) {
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

// loadProfile shows the Profile view of the current pursuance, when it
// is open (a live change reloads it; the requests are read from the
// relays only when asked, or when the view opens: withRequests).
async function loadProfile(withRequests) {
  if (!current || !info || !visible("profile")) return;
  const p = current;
  const r = await api("/p/" + p + "/profile");
  if (p !== current) return;
  profileNow = r;
  const now = $("#profile-now");
  const pr = r.profile;
  if (pr) {
    const dl = el("dl", undefined, "facts");
    const row = (k, v) => { dl.append(el("dt", k), el("dd", v)); };
    row("Published as", pr.name + " (version " + pr.version + ")");
    row("Mission", pr.mission);
    if (pr.seeking) row("Looks for", pr.seeking);
    row("Join requests go to", "the role " + pr.intake_role);
    row("On the relays", pr.relays.length ? pr.relays.join(", ") : "none yet: add a relay in Members");
    now.replaceChildren(dl);
  } else now.replaceChildren(el("p", "This pursuance has no public profile: nobody outside can find it or ask to join."));
  const ref = $("#profile-refusal");
  ref.textContent = r.may_publish ? "" : "Your roles may not publish or withdraw the profile (" + r.refusal + "). A member whose role the charter allows to publish-profile can.";
  ref.classList.toggle("hidden", r.may_publish);
  const f = $("#profile-form");
  f.classList.toggle("hidden", !r.may_publish);
  $("#profile-withdraw").classList.toggle("hidden", !r.may_publish || !pr);
  f.querySelector('button[type="submit"]').textContent = pr ? "Publish a new version" : "Publish profile";
  const sel = f.intake_role, roles = info.roles.join("\n");
  if (sel.dataset.roles !== roles || profileFormFor !== p) {
    sel.replaceChildren(...info.roles.map((x) => el("option", x)));
    sel.dataset.roles = roles;
  }
  if (profileFormFor !== p) { // filled once per pursuance: a live reload does not overwrite what the member types
    profileFormFor = p;
    f.mission.value = pr ? pr.mission : "";
    f.seeking.value = pr ? pr.seeking : "";
    sel.value = pr ? pr.intake_role : (info.my_roles[0] || info.roles[0] || "");
  }
  $("#requests-box").classList.toggle("hidden", !pr);
  if (!pr) $("#requests-list").replaceChildren();
  else if (withRequests) await loadRequests();
}

// loadRequests reads the requests to join from the relays and lists them;
// a member who holds no key of the intake role is told who reads them.
async function loadRequests() {
  const p = current, note = $("#requests-note"), list = $("#requests-list");
  note.textContent = "Reading the relays…";
  let reqs;
  try { reqs = await api("/p/" + p + "/requests"); } catch (err) {
    if (p !== current) return;
    list.replaceChildren();
    note.textContent = err.message;
    return;
  }
  if (p !== current) return;
  note.textContent = reqs.length ? "" : "No requests to join yet.";
  list.replaceChildren(...reqs.slice().reverse().map(requestItem));
}

const statusWord = {waiting: "Waiting for an answer", invited: "Invited", refused: "Refused"};

// requestItem is one request: who, their message, when; and, while it
// waits, the answer: an invite into a role, or a refusal.
function requestItem(q) {
  const li = el("li", undefined, "entry");
  li.dataset.request = q.request;
  li.append(el("h3", q.name), el("p", q.message, "message"), el("p", "Sent " + when(q.at) + " · member " + q.member.slice(0, 16) + "…", "muted small"));
  if (q.status !== "waiting") {
    li.append(el("p", q.status === "invited" ? "Invited: the invite code went to " + q.name + ", sealed to them; they join with it from their page." : "Refused: " + q.name + " was told.", "answered " + q.status));
    return li;
  }
  const f = el("form", undefined, "stack answer");
  f.setAttribute("aria-label", "Answer " + q.name);
  const role = el("select"), msg = el("input");
  role.name = "role"; msg.name = "message"; msg.maxLength = 1000; msg.autocomplete = "off";
  role.id = "answer-role-" + String(q.request).slice(0, 16); msg.id = "answer-msg-" + String(q.request).slice(0, 16); // their errors are named after them
  role.replaceChildren(...info.roles.map((x) => el("option", x)));
  role.value = info.roles.includes("researcher") ? "researcher" : info.roles[info.roles.length - 1];
  const lr = el("label", "Invite as "), lm = el("label", "Message to " + q.name + " (optional) ");
  lr.append(role); lm.append(msg);
  const inv = el("button", "Invite"), ref = el("button", "Refuse", "danger");
  inv.type = "submit"; ref.type = "button";
  inv.setAttribute("aria-label", "Invite " + q.name);
  ref.setAttribute("aria-label", "Refuse " + q.name);
  const bar = el("div", undefined, "toolbar");
  bar.append(inv, ref);
  f.append(lr, lm, bar);
  const answer = async (invite) => {
    inv.disabled = ref.disabled = true;
    try {
      const r = await api("/p/" + current + "/requests/" + q.request + "/answer", {invite, role: role.value, message: msg.value});
      say(r.status === "invited" ? "Invited " + q.name + " as " + role.value + ": the invite code went to them, sealed to their key." + (r.sync_error ? " But " + r.sync_error + "." : "") + (r.proposed ? " The invite is proposed: the charter asks a quorum, and it works once others approve." : "") : "Refused: " + q.name + " is told.");
      await loadRequests();
    } catch (err) { showError(err, /role/i.test(err.message) ? role : msg); inv.disabled = ref.disabled = false; }
  };
  f.onsubmit = (e) => { e.preventDefault(); answer(true); };
  ref.onclick = () => { if (window.confirm("Refuse " + q.name + "'s request to join? They are told.")) answer(false); };
  li.append(f);
  return li;
}

// showDiscover opens the Discover page, which belongs to the home, not
// to a pursuance.
function showDiscover() {
  document.querySelectorAll("header nav button").forEach((x) => x.classList.remove("active"));
  document.querySelectorAll(".view").forEach((v) => v.classList.toggle("hidden", v.id !== "discover"));
  $("#discover-open").classList.add("active");
  closeDetail(true);
  const f = $("#discover-form");
  if (!f.relay.value) f.relay.value = localStorage.getItem("pursuance-directory") || "";
  (f.relay.value ? f.q : f.relay).focus();
  loadAnswers().catch(showError);
}

// isMember says whether this home is a member of pursuance id.
function isMember(id) {
  return [...$("#pursuance").options].some((o) => o.value === id);
}

// discoverItem is one pursuance a directory lists, with "Ask to join".
function discoverItem(d, relayURL) {
  const li = el("li", undefined, "entry");
  li.dataset.pursuance = d.pursuance;
  li.append(el("h3", d.name), el("p", d.mission, "message"));
  if (d.seeking) li.append(el("p", "Looks for: " + d.seeking));
  li.append(el("p", "Relays: " + (d.relays.length ? d.relays.join(", ") : relayURL) + " · ID " + d.pursuance.slice(0, 16) + "…", "muted small"));
  if (isMember(d.pursuance)) { li.append(el("p", "You are a member.", "muted")); return li; }
  const open = el("button", "Ask to join");
  open.type = "button";
  open.setAttribute("aria-label", "Ask to join " + d.name);
  const f = el("form", undefined, "stack hidden knock");
  f.setAttribute("aria-label", "Ask to join " + d.name);
  const lab = el("label", "Who you are and why you ask (" + d.name + "'s intake role reads it, and nobody else) ");
  const ta = el("textarea");
  ta.name = "message"; ta.rows = 3; ta.maxLength = 1000; ta.required = true;
  ta.id = "knock-" + String(d.pursuance).slice(0, 16); // its error is named after it
  lab.append(ta);
  const send = el("button", "Send request");
  send.type = "submit";
  f.append(lab, send);
  open.onclick = () => { f.classList.remove("hidden"); open.classList.add("hidden"); ta.focus(); };
  f.onsubmit = async (e) => {
    e.preventDefault();
    send.disabled = true;
    try {
      const r = await api("/knock", {pursuance: d.pursuance, relay: relayURL, profile: d.profile, message: ta.value});
      f.replaceChildren(el("p", "Asked to join " + r.name + ". The answer shows under My requests.", "answered"));
      await loadAnswers();
    } catch (err) { showError(err, ta); send.disabled = false; }
  };
  li.append(open, f);
  return li;
}

// loadAnswers reads the answers to this home's requests and lists them;
// an invite offers to join.
async function loadAnswers() {
  const note = $("#answers-note");
  note.textContent = "Reading the relays…";
  let as;
  try { as = await api("/answers"); } catch (err) { note.textContent = err.message; return; }
  note.textContent = as.length ? "" : "You have not asked to join any pursuance.";
  $("#answers-list").replaceChildren(...as.slice().reverse().map((a) => {
    const li = el("li", undefined, "entry");
    li.dataset.request = a.request;
    const head = el("h3", a.name + " — ");
    head.append(el("span", statusWord[a.status] || a.status, "status " + a.status));
    li.append(head, el("p", "Asked " + when(a.at), "muted small"));
    if (a.message) li.append(el("p", (a.from || "A member") + ": " + a.message, "message"));
    if (a.status === "invited") {
      if (isMember(a.pursuance)) li.append(el("p", "You are a member.", "muted"));
      else {
        const join = el("button", "Join " + a.name);
        join.type = "button";
        join.onclick = async () => {
          join.disabled = true;
          try { await joinWith(a.code); say("You joined " + a.name + "."); } catch (err) { showError(err); join.disabled = false; }
        };
        li.append(join);
      }
    }
    return li;
  }));
}

document.addEventListener("DOMContentLoaded", () => {
  $("#discover-open").onclick = showDiscover;
  document.querySelectorAll("header nav button").forEach((b) => b.addEventListener("click", () => $("#discover-open").classList.remove("active")));
  $("#profile-form").onsubmit = async (e) => {
    e.preventDefault();
    const f = e.target;
    try {
      const r = await api("/p/" + current + "/profile", {mission: f.mission.value, seeking: f.seeking.value, intake_role: f.intake_role.value});
      say(r.proposed ? "The profile is proposed: the charter asks a quorum; it is published once others approve." :
        r.sync_error ? "Published, but " + r.sync_error + "." : "Published on " + r.profile.relays.join(", ") + ": join requests go to " + r.profile.intake_role + ".");
      for (const x of [f.mission, f.seeking, f.intake_role]) clearFieldError(x);
      await loadProfile(true);
    } catch (err) { showError(err, /intake|role/i.test(err.message) ? f.intake_role : /seek|look/i.test(err.message) ? f.seeking : f.mission); }
  };
  $("#profile-withdraw").onclick = async () => {
    if (!window.confirm("Withdraw the public profile, for good? Relays stop listing it and take no more requests; publishing again makes a new one.")) return;
    try {
      const r = await api("/p/" + current + "/profile/withdraw", {});
      say(r.proposed ? "The withdrawal is proposed: the charter asks a quorum." : r.sync_error ? "Withdrawn, but " + r.sync_error + "." : "Withdrawn: honest relays list it no more.");
      await loadProfile(false);
    } catch (err) { showError(err); }
  };
  $("#requests-check").onclick = () => loadRequests().catch(showError);
  $("#answers-check").onclick = () => loadAnswers().catch(showError);
  $("#discover-form").onsubmit = async (e) => {
    e.preventDefault();
    const f = e.target, u = f.relay.value.trim(), note = $("#discover-note");
    note.textContent = "Searching…";
    try {
      const found = await api("/discover?relay=" + encodeURIComponent(u) + "&q=" + encodeURIComponent(f.q.value));
      localStorage.setItem("pursuance-directory", u);
      clearFieldError(f.relay);
      note.textContent = found.length ? found.length + (found.length === 1 ? " pursuance found." : " pursuances found.") : "No pursuance on " + u + " matches: try fewer or other words.";
      $("#discover-list").replaceChildren(...found.map((d) => discoverItem(d, u)));
    } catch (err) { note.textContent = ""; showError(err, f.relay); }
  };
  // Requests and answers come through relays, not the pursuance's log,
  // so no live change announces them: read them now and then while shown.
  setInterval(() => {
    if (locked) return;
    if (visible("profile") && !$("#requests-box").classList.contains("hidden") && !$("#requests-list").contains(document.activeElement)) loadRequests().catch(() => {});
    if (visible("discover") && !$("#answers-list").contains(document.activeElement)) loadAnswers().catch(() => {});
  }, 15000);
});
