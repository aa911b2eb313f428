"use strict";
// Files in the task panel (docs/attachments.md; docs/web.md, "Files"): the
// task's files, a file picker and a drop zone that attach new ones (with
// a progress bar while the browser hands the file to this node, which
// encrypts it and puts it on the relays), and a preview of images and
// PDFs, decrypted by this node and shown from this origin. Uses app.js's
// $, el, say, showError, token, current, openTask and openDetail.

// fileURL is where this node serves a file of the open task, decrypted.
function fileURL(f) { return "/files/" + current + "/" + openTask + "/" + f.file; }

function sizeText(n) {
  if (n < 1024) return n + " B";
  if (n < 1 << 20) return (n / 1024).toFixed(1) + " KiB";
  return (n / (1 << 20)).toFixed(1) + " MiB";
}

// fileItem is the list item of one file: its link, what it is, and a
// Preview button for an image or a PDF.
function fileItem(f) {
  const li = el("li", undefined, "file");
  li.dataset.file = f.file;
  const a = el("a", f.name);
  a.href = fileURL(f);
  a.download = f.name;
  li.append(a, " ", el("span", sizeText(f.size) + " · " + f.author + " · " + f.time + (f.held ? " · on this home" : ""), "muted small"));
  if (f.preview) {
    const b = el("button", "Preview");
    b.type = "button";
    b.onclick = () => preview(f);
    li.append(" ", b);
  }
  return li;
}

// commentFiles is the list of the files attached to comment c, or null.
function commentFiles(c) {
  if (!c.files || !c.files.length) return null;
  const ul = el("ul", undefined, "files");
  ul.append(...c.files.map(fileItem));
  return ul;
}

// renderFilesDetail lists the task's files in the panel (d: the task's
// answer from /api); the files of a comment are listed under it
// (commentFiles).
function renderFilesDetail(d) {
  const files = d.files || [];
  const all = files.concat(...(d.comments || []).map((c) => c.files || []));
  $("#d-files").replaceChildren(...files.map(fileItem));
  if (!all.some((f) => $("#d-preview").dataset.file === f.file)) { $("#d-preview").replaceChildren(); $("#d-preview").dataset.file = ""; }
}

// preview shows an image or a PDF of the open task in the panel.
function preview(f) {
  const box = $("#d-preview");
  box.dataset.file = f.file;
  if (f.preview === "image") {
    const img = el("img");
    img.alt = f.name;
    img.src = fileURL(f);
    box.replaceChildren(img);
  } else {
    const fr = el("iframe");
    fr.title = f.name;
    fr.src = fileURL(f);
    box.replaceChildren(fr);
  }
}

// upload attaches files to the open task, or to its comment with the ID
// comment, one after another.
async function upload(files, comment) {
  const task = openTask, bar = $("#d-upload");
  for (const file of files) {
    bar.value = 0;
    bar.classList.remove("hidden");
    $("#d-upload-name").textContent = file.name;
    try {
      await new Promise((resolve, reject) => {
        const x = new XMLHttpRequest();
        x.open("POST", "/api/p/" + current + "/tasks/" + task + "/files?name=" + encodeURIComponent(file.name) + (comment ? "&comment=" + comment : ""));
        x.setRequestHeader("X-Pursuance-Token", token);
        x.setRequestHeader("Content-Type", "application/octet-stream");
        x.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = e.loaded / e.total; };
        x.onload = () => {
          let data = {};
          try { data = JSON.parse(x.responseText); } catch (e) { /* not JSON */ }
          if (x.status === 200) resolve(data); else reject(new Error(data.error || x.statusText));
        };
        x.onerror = () => reject(new Error("the node did not take the file"));
        x.send(file);
      });
      say("Attached " + file.name + ".");
    } catch (e) {
      showError(e);
      break;
    } finally {
      bar.classList.add("hidden");
      $("#d-upload-name").textContent = "";
    }
  }
  if (openTask === task) openDetail(task, true);
}

document.addEventListener("DOMContentLoaded", () => {
  const input = $("#d-file"), zone = $("#d-drop");
  input.onchange = () => { const fs = [...input.files]; input.value = ""; upload(fs); };
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer && e.dataTransfer.files.length) upload([...e.dataTransfer.files]);
  });
});
