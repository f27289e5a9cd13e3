// Rendering pieces of the image view: removable chips and the metadata list.

import { plural } from "./api.js";

/** Chips for `names`, each with a remove button calling `onRemove(name)`; links if `href` given. */
export function renderChips(list, names, emptyText, onRemove, href) {
  if (!names.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = emptyText;
    list.replaceChildren(li);
    return;
  }
  list.replaceChildren(
    ...names.map((name) => {
      const li = document.createElement("li");
      li.className = "chip";
      const label = href ? document.createElement("a") : document.createElement("span");
      if (href) label.href = href(name);
      label.textContent = name;
      const x = document.createElement("button");
      x.type = "button";
      x.className = "chip-x";
      x.setAttribute("aria-label", `Remove ${name}`);
      x.textContent = "✕";
      x.addEventListener("click", () => onRemove(name));
      li.append(label, x);
      return li;
    }),
  );
}

const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");

function bytes(n) {
  if (n < 1024) return plural(n, "byte");
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** The image's metadata as a definition list. */
export function renderMeta(dl, img) {
  const rows = [
    ["File", img.original_name || "—"],
    ["Size", `${img.width} × ${img.height} px, ${bytes(img.size_bytes)}`],
    ["Format", img.format],
    ["Source", img.source],
    ["Machine", img.machine ?? "—"],
    ["Camera", img.camera ?? "—"],
    ["Captured", when(img.captured_at)],
    ["Added", when(img.created_at)],
    ["ID", String(img.id)],
    ["SHA-256", img.sha256],
  ];
  dl.replaceChildren(
    ...rows.flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v;
      if (k === "SHA-256") dd.className = "mono";
      return [dt, dd];
    }),
  );
}
