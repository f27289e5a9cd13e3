// The Machines page: every machine, kept live by polling; the register form shows the new key once.

import { api } from "./api.js";
import { deploymentText, el, fpsText, onlineDot, recentItems, showKey, ago } from "./machine_view.js";
import { showError, toast } from "./toast.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 5000;

function card(m) {
  const recent = recentItems(m.status, 3);
  return el("li", { className: "machine", dataset: { machine: m.name } },
    el("div", { className: "machine-head" }, onlineDot(m),
      el("a", { href: `/machines/${m.id}`, className: "machine-name" }, m.name),
      el("span", { className: "muted small" }, `last seen ${ago(m.last_seen_at)}`)),
    el("p", { className: "deployed" }, deploymentText(m.deployment)),
    el("p", { className: "fps muted small" }, m.online ? fpsText(m.status) : "offline"),
    recent.length ? el("ul", { className: "recent plain small" }, ...recent) : null,
    m.key_active ? null : el("p", { className: "error small" }, "No key: this machine is locked out until you make a new key."),
  );
}

async function load() {
  const machines = await api("/api/v1/machines");
  $("no-machines").hidden = machines.length > 0;
  $("machine-list").replaceChildren(...machines.map(card));
}

$("register").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.target;
  try {
    const name = String(new FormData(form).get("name") ?? "").trim();
    const m = await api("/api/v1/machines", { method: "POST", body: { name } });
    showKey($("new-key"), m.key, `Registered ${m.name}. Its key:`);
    toast(`Registered ${m.name}.`, "ok");
    form.reset();
    await load();
  } catch (err) {
    showError(err);
  }
});

load().catch(showError).finally(() => (document.body.dataset.ready = "true"));
setInterval(() => document.hidden || load().catch(showError), POLL_MS);
