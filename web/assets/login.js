"use strict";
// Logs this browser in with the single-use token in the address's
// fragment (the part after #, which browsers never send to a server), then
// opens the UI. The session's token is kept in this origin's storage and
// sent with every API request (app.js).
(async () => {
  const state = document.querySelector("#login-state");
  const token = location.hash.slice(1);
  if (location.pathname !== "/login") return;
  history.replaceState(null, "", "/login"); // the token leaves the address bar
  // A browser already logged in (a link opened twice) goes straight in.
  const kept = localStorage.getItem("pursuance-token");
  if (kept) {
    const r = await fetch("/api/me", {headers: {"X-Pursuance-Token": kept}}).catch(() => null);
    if (r && r.ok) { location.replace("/"); return; }
  }
  if (!token) return;
  state.textContent = "Logging in…";
  try {
    const r = await fetch("/login", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({token})});
    const d = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(d.error || r.statusText);
    localStorage.setItem("pursuance-token", d.token);
    location.replace("/");
  } catch (err) {
    state.textContent = "Not logged in: " + err.message;
  }
})();
