"use strict";
// Light or dark: the system's choice (prefers-color-scheme) unless the
// member picks one, which this browser remembers (localStorage). The page
// is dark when <html data-theme="dark">, or with no data-theme when the
// system prefers dark (theme.css).
(() => {
  const saved = localStorage.getItem("pursuance-theme") || "";
  if (saved) document.documentElement.dataset.theme = saved;
  const label = el("label", "Theme ");
  label.id = "theme-label";
  const sel = el("select");
  sel.id = "theme";
  for (const [v, t] of [["", "System"], ["light", "Light"], ["dark", "Dark"]]) { const o = el("option", t); o.value = v; sel.append(o); }
  sel.value = saved;
  sel.onchange = () => {
    if (sel.value) { document.documentElement.dataset.theme = sel.value; localStorage.setItem("pursuance-theme", sel.value); } else { delete document.documentElement.dataset.theme; localStorage.removeItem("pursuance-theme"); }
  };
  label.append(sel);
  $("#me").before(label);
})();
