"use strict";
// Devices in the UI (docs/devices.md, docs/web.md "Devices"): the home's
// Devices page lists the member's devices, approves a new home's request
// code, accepts an approval on a home that asked to be a device, and
// revokes a device. Uses app.js's api, el, $, showError, loadPursuances,
// closeDetail and say.

// loadDevices shows the member's devices, and the accept form on a home
// that waits for its approval.
async function loadDevices() {
  const r = await api("/devices");
  $("#device-accept").classList.toggle("hidden", !r.pending);
  $("#device-approve").classList.toggle("hidden", r.pending);
  $("#devices-list").replaceChildren(...r.devices.map((d) => {
    const li = el("li", undefined, "device");
    li.dataset.device = d.device;
    li.append(el("strong", d.name), " ", el("code", d.device.slice(0, 12) + "…"));
    const notes = [];
    if (d.this) notes.push("this home");
    notes.push(d.added ? "linked " + new Date(d.added).toLocaleString() : "your first home");
    if (d.revoked) notes.push("revoked");
    li.append(" ", el("span", "(" + notes.join(", ") + ")", "muted"));
    if (!d.this && !d.revoked && d.added) {
      const b = el("button", "Revoke", "danger");
      b.type = "button";
      b.onclick = async () => {
        if (!window.confirm("Revoke " + d.name + "? It will write nothing that is accepted and read nothing new; your keys are rotated.")) return;
        b.disabled = true;
        try {
          const x = await api("/devices/" + d.device + "/revoke", {});
          say("Revoked " + d.name + " in " + x.revoked_in + " pursuances; your keys are rotated.");
          await loadDevices();
        } catch (err) { showError(err); b.disabled = false; }
      };
      li.append(" ", b);
    }
    return li;
  }));
}

// loadDevicesIfShown reloads the Devices page when it is open: a sync or
// another page's change may have added or revoked a device.
function loadDevicesIfShown() {
  if (!document.getElementById("devices").classList.contains("hidden")) loadDevices().catch(() => {});
}

// showDevices opens the Devices page, which belongs to the home.
function showDevices() {
  document.querySelectorAll("header nav button").forEach((x) => x.classList.remove("active"));
  document.querySelectorAll(".view").forEach((v) => v.classList.toggle("hidden", v.id !== "devices"));
  $("#discover-open").classList.remove("active");
  $("#devices-open").classList.add("active");
  closeDetail(true);
  loadDevices().catch(showError);
}

document.addEventListener("DOMContentLoaded", () => {
  $("#devices-open").onclick = showDevices;
  document.querySelectorAll("header nav button, #discover-open").forEach((b) => b.addEventListener("click", () => $("#devices-open").classList.remove("active")));
  $("#device-approve").onsubmit = async (e) => {
    e.preventDefault();
    const f = e.target;
    try {
      const r = await api("/devices/approve", {code: f.code.value.trim()});
      $("#device-approval-name").textContent = r.name;
      $("#device-approval").value = r.approval;
      $("#device-approval-box").classList.remove("hidden");
      f.code.value = "";
      clearFieldError(f.code);
    } catch (err) { showError(err, f.code); }
  };
  $("#device-accept").onsubmit = async (e) => {
    e.preventDefault();
    const f = e.target, b = f.querySelector("button");
    b.disabled = true;
    try {
      const r = await api("/devices/accept", {code: f.code.value.trim()});
      say("This home is now your device, with " + r.pursuances + (r.pursuances === 1 ? " pursuance." : " pursuances."));
      f.code.value = "";
      clearFieldError(f.code);
      await loadPursuances();
      await loadDevices();
    } catch (err) { showError(err, f.code); }
    b.disabled = false;
  };
});
