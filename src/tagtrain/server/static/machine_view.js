// Pieces both Machines pages show: the online dot, "seen 5 s ago", what is deployed, frame rates,
// recent predictions, and the once-only key panel with the command that starts the agent.

import { toast } from "./toast.js";

/** A new element: `el("p", { className: "x" }, "text", child)`. */
export function el(tag, { dataset = {}, ...props } = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  Object.assign(node.dataset, dataset);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export function ago(iso) {
  if (!iso) return "never";
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

export function onlineDot(machine) {
  const label = machine.online ? "online" : "offline";
  return el("span", { className: `dot ${label}`, title: `${label}, last seen ${ago(machine.last_seen_at)}` },
    el("span", { className: "dot-text" }, label));
}

export function deploymentText(d) {
  if (!d) return "nothing deployed";
  return `${d.model} v${d.version} ${d.pinned ? "(pinned)" : "(follows the newest version)"}`;
}

export function fpsText(status) {
  const cams = status?.cameras ?? [];
  if (!cams.length) return "no camera reports";
  return cams.map((c) => (c.ok ? `${c.name} ${c.fps.toFixed(1)} fps` : `${c.name}: ${c.error || "not working"}`)).join(" · ");
}

const pct = (x) => `${(100 * x).toFixed(0)}%`;

/** The latest `n` predictions, newest first, as list items: "door · glass 91%, paper 5% · 12 s
 * ago". (Sorted here: the agent's list mixes its cameras.) */
export function recentItems(status, n = 5) {
  const newest = [...(status?.recent ?? [])].sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
  return newest.slice(0, n).map((r) => {
    const labels = r.classifications.map((c) => `${c.class_name} ${pct(c.confidence)}`).join(", ") || "no label";
    return el("li", {}, el("b", {}, r.camera), ` · ${labels} `, el("span", { className: "muted" }, `· ${ago(r.at)}`));
  });
}

async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
    toast(`Copied the ${what}.`, "ok");
  } catch {
    toast(`Select the ${what} and copy it (the browser did not allow copying here).`, "info");
  }
}

/** Show a machine key (made just now) once, with copy buttons and the agent's start command. */
export function showKey(box, key, note) {
  const command = `tagtrain agent --server ${location.origin} --machine-key ${key}`;
  box.replaceChildren(
    el("p", { className: "warn-note" }, note, " ", el("b", {}, "Copy it now: it is not shown again.")),
    el("div", { className: "copy-row" }, el("code", { className: "token", id: "machine-key" }, key),
      el("button", { type: "button", className: "secondary", onclick: () => copy(key, "key") }, "Copy key")),
    el("p", { className: "small" }, "On the machine, start the agent with:"),
    el("div", { className: "copy-row" }, el("code", { className: "token", id: "agent-command" }, command),
      el("button", { type: "button", className: "secondary", onclick: () => copy(command, "command") }, "Copy command")),
  );
  box.hidden = false;
}
