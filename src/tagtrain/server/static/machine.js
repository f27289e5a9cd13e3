// One machine's page: live status (polled), the stream, the config form, deployment with one-click
// rollback, the machine key, and a test panel that classifies a photo with the deployed version.

import { api } from "./api.js";
import { ago, deploymentText, el, fpsText, onlineDot, recentItems, showKey } from "./machine_view.js";
import { confirmDialog, showError, toast } from "./toast.js";
import { setupTryIt } from "./tryit.js";

const $ = (id) => document.getElementById(id);
const root = $("machine");
const url = `/api/v1/machines/${root.dataset.id}`;
const POLL_MS = 5000;
let machine = null;
let models = [];

// ---- status ------------------------------------------------------------------------------------

function renderStatus(m) {
  const s = m.status;
  $("machine-dot").replaceChildren(onlineDot(m));
  const serving = s?.model ? ` · serving ${s.model}` : "";
  const version = s?.agent_version ? ` · agent ${s.agent_version}` : "";
  $("machine-summary").textContent = `${m.online ? "Online" : "Offline"} · last seen ${ago(m.last_seen_at)}${serving}${version}`;
  $("fps").textContent = m.online ? fpsText(s) : "";
  const recent = recentItems(s, 10);
  $("recent").replaceChildren(...recent);
  $("no-recent").hidden = recent.length > 0;
  const q = s?.queue;
  $("queue").textContent = q ? `Capture queue: ${q.pending} waiting, ${q.synced} synced, ${q.dropped} dropped.` : "";
  $("agent-errors").replaceChildren(...(s?.errors ?? []).map((e) => el("li", { role: "note" }, e)));
  $("deployment").textContent = deploymentText(m.deployment);
  $("key-state").textContent = m.key_active
    ? `Active; it starts with ${m.key_prefix}…`
    : "Revoked: the machine is locked out until you make a new key.";
  renderStreams(m);
}

let streamKey = "";
let relayedBase = null; // the stream_url whose streams the browser could not load
const relayed = new Set(); // cameras shown through the server's relay for that stream_url

const DIRECT = "direct from the machine";
const RELAYED = "relayed by the server";

/** One <img> per camera the agent runs, on its MJPEG stream; rebuilt only when what it shows
 * changes, so that polling does not restart the streams. The agent's own stream comes first (no
 * load on the server); when the browser cannot load it (the agent listens on loopback, sits
 * behind NAT, or reported no URL), the server's relay takes over: same origin, so the login
 * cookie opens it, and it works whenever the agent can reach the server. A relay that fails is
 * tried again on the next poll. */
function renderStreams(m) {
  const base = m.online ? m.status?.stream_url?.replace(/\/+$/, "") || null : null;
  const names = (m.status?.cameras ?? []).map((c) => c.name);
  const key = JSON.stringify([m.online, base, names]);
  if (key === streamKey) return;
  streamKey = key;
  if (base !== relayedBase) {
    relayedBase = base;
    relayed.clear();
  }
  const box = $("streams");
  if (!m.online) {
    box.replaceChildren(el("p", { className: "muted", id: "no-stream" }, "The live stream appears here when the agent is online."));
    return;
  }
  if (!names.length) {
    const text = m.config.cameras.length
      ? "The agent has not started its cameras yet: the stream appears when it has."
      : "No camera is configured: add one below.";
    box.replaceChildren(el("p", { className: "muted", id: "no-stream" }, text));
    return;
  }
  box.replaceChildren(...names.map((name) => streamFigure(base, name)));
}

function streamFigure(base, name) {
  const camera = encodeURIComponent(name);
  const relayUrl = `${url}/cameras/${camera}/live.mjpg`;
  const via = el("span", { className: "muted small stream-via" });
  const img = el("img", { alt: `Live view of camera ${name}` });
  const show = (direct) => {
    img.src = direct ? `${base}/stream/${camera}.mjpg` : relayUrl;
    img.dataset.via = direct ? "direct" : "relay";
    via.textContent = direct ? DIRECT : RELAYED;
  };
  img.addEventListener("error", () => {
    if (img.dataset.via === "direct") {
      relayed.add(name);
      show(false);
    } else {
      streamKey = ""; // the relay failed too: build it again on the next poll
    }
  });
  show(Boolean(base) && !relayed.has(name));
  return el("figure", { className: "stream" }, img, el("figcaption", {}, name, " · ", via));
}

// ---- config form ------------------------------------------------------------------------------

const list = (text) => text.split(",").map((t) => t.trim()).filter(Boolean);
const num = (input) => (input.value.trim() === "" ? undefined : Number(input.value));

function cameraRow(cam) {
  const row = $("camera-template").content.firstElementChild.cloneNode(true);
  const field = (name) => row.querySelector(`[data-field="${name}"]`);
  const cap = cam.capture ?? {};
  const values = {
    name: cam.name ?? "", source: cam.source ?? "", max_fps: cam.max_fps ?? "",
    frequency_hz: cap.frequency_hz ?? 0, tags: (cap.tags ?? []).join(", "),
    min_confidence: cap.min_confidence ?? 0, max_confidence: cap.max_confidence ?? 1,
    labels: (cap.labels ?? []).join(", "), max_per_minute: cap.max_per_minute ?? 60,
  };
  for (const [name, value] of Object.entries(values)) field(name).value = String(value);
  const title = row.querySelector(".camera-title");
  title.textContent = values.name;
  field("name").addEventListener("input", (e) => (title.textContent = e.target.value));
  row.querySelector(".remove-camera").addEventListener("click", () => {
    row.remove();
    $("no-cameras").hidden = $("cameras").children.length > 0;
  });
  return row;
}

function cameraFrom(row) {
  const field = (name) => row.querySelector(`[data-field="${name}"]`);
  const maxFps = num(field("max_fps"));
  return {
    name: field("name").value.trim(),
    source: field("source").value.trim(),
    max_fps: maxFps === undefined ? null : maxFps,
    capture: {
      frequency_hz: num(field("frequency_hz")) ?? 0,
      tags: list(field("tags").value),
      min_confidence: num(field("min_confidence")),
      max_confidence: num(field("max_confidence")),
      labels: list(field("labels").value),
      max_per_minute: num(field("max_per_minute")),
    },
  };
}

function renderConfig(config) {
  $("cameras").replaceChildren(...config.cameras.map(cameraRow));
  $("no-cameras").hidden = config.cameras.length > 0;
  $("vision-name").value = config.vision.name;
  $("vision-min").value = String(config.vision.default_minimum_confidence);
  $("vision-n").value = String(config.vision.n);
  $("vision-per-label").value = Object.entries(config.vision.label_confidences)
    .map(([label, value]) => `${label}=${value}`)
    .join(", ");
}

// "glass=0.8, metal=0.6" -> {glass: 0.8, metal: 0.6}; a bad entry is named in the error.
function perLabel(text) {
  const out = {};
  for (const entry of list(text)) {
    const match = entry.match(/^(.+?)\s*[=:]\s*([0-9.]+)$/);
    const value = match ? Number(match[2]) : NaN;
    if (!match || !(value >= 0 && value <= 1)) {
      throw new Error(`per-label minimum "${entry}" is not label=number between 0 and 1`);
    }
    out[match[1].trim()] = value;
  }
  return out;
}

function configFromForm() {
  return {
    cameras: [...$("cameras").querySelectorAll("fieldset.cam-config")].map(cameraFrom),
    vision: {
      name: $("vision-name").value.trim(),
      default_minimum_confidence: num($("vision-min")),
      label_confidences: perLabel($("vision-per-label").value),
      n: num($("vision-n")),
    },
  };
}

$("add-camera").addEventListener("click", () => {
  const n = $("cameras").children.length;
  const row = cameraRow({ name: n ? `cam${n + 1}` : "cam", source: "0" });
  $("cameras").append(row);
  $("no-cameras").hidden = true;
  row.querySelector('[data-field="source"]').focus();
});

$("config-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    machine = await api(`${url}/config`, { method: "PUT", body: configFromForm() });
    renderConfig(machine.config);
    renderStatus(machine);
    toast("Config saved. The agent picks it up on its next poll.", "ok");
  } catch (err) {
    showError(err, "The config was not saved");
  }
});

// ---- deployment -------------------------------------------------------------------------------

const modelNamed = (name) => models.find((m) => m.name === name);
const headline = (metrics) => {
  const value = metrics.accuracy ?? metrics.map ?? metrics.macro_f1;
  return value == null ? "—" : `${(100 * value).toFixed(1)}%`;
};

function fillVersions(model) {
  const d = machine?.deployment;
  const select = $("deploy-version");
  select.replaceChildren(
    el("option", { value: "" }, "latest (follow the newest version)"),
    ...(model?.versions ?? []).map((v) => el("option", { value: String(v.version) }, `v${v.version}`)),
  );
  if (d && d.model === model?.name && d.pinned) select.value = String(d.version);
  renderVersionList(model);
}

function renderVersionList(model) {
  const d = machine?.deployment;
  const rows = (model?.versions ?? []).map((v) => {
    const here = d && d.model === model.name && d.version === v.version;
    const action = here && d.pinned
      ? el("span", { className: "pill" }, "pinned")
      : el("button", { type: "button", className: "secondary", onclick: () => deploy(model.name, v.version) }, "Pin");
    return el("tr", { dataset: { version: String(v.version) } },
      el("th", { scope: "row" }, el("a", { href: `/models/${encodeURIComponent(model.name)}/versions/${v.version}` }, `v${v.version}`),
        here ? el("span", { className: "pill deployed-pill" }, "deployed") : null),
      el("td", { className: "hide-narrow" }, new Date(v.created_at).toLocaleString()),
      el("td", { className: "num" }, headline(v.metrics)),
      el("td", { className: "num" }, action));
  });
  $("version-list").querySelector("tbody").replaceChildren(...rows);
}

function renderDeployForm() {
  const withVersions = models.filter((m) => m.versions.length);
  $("no-models").hidden = withVersions.length > 0;
  $("deploy-form").hidden = withVersions.length === 0;
  const select = $("deploy-model");
  select.replaceChildren(...withVersions.map((m) => el("option", { value: m.name }, m.name)));
  const current = machine?.deployment?.model;
  if (current && modelNamed(current)) select.value = current;
  fillVersions(modelNamed(select.value));
}

async function deploy(model, version) {
  try {
    machine = await api(`${url}/deployment`, { method: "PUT", body: { model, version } });
    toast(`Deployed ${deploymentText(machine.deployment)}.`, "ok");
    afterDeploymentChange();
  } catch (err) {
    showError(err, "Not deployed");
  }
}

function afterDeploymentChange() {
  renderStatus(machine);
  $("deploy-model").value = machine.deployment?.model ?? $("deploy-model").value;
  fillVersions(modelNamed($("deploy-model").value));
  renderTestPanel();
}

$("deploy-model").addEventListener("change", (e) => fillVersions(modelNamed(e.target.value)));
$("deploy-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const version = $("deploy-version").value;
  deploy($("deploy-model").value, version ? Number(version) : null);
});
$("undeploy").addEventListener("click", async () => {
  try {
    machine = await api(`${url}/deployment`, { method: "DELETE" });
    toast("Nothing is deployed to this machine now.", "ok");
    afterDeploymentChange();
  } catch (err) {
    showError(err);
  }
});

// ---- test panel -------------------------------------------------------------------------------

let testedRef = null;

/** A fresh try-it box aimed at the deployed version (rebuilt when the deployment changes). */
function renderTestPanel() {
  const d = machine?.deployment;
  const ref = d ? `${d.model}@${d.version}` : null;
  if (ref === testedRef) return;
  testedRef = ref;
  $("test-none").hidden = Boolean(ref);
  const panel = $("test-panel");
  if (!ref) {
    panel.replaceChildren();
    return;
  }
  const box = $("tryit-template").content.firstElementChild.cloneNode(true);
  box.dataset.ref = ref;
  box.querySelector("h2").replaceWith(el("p", { className: "muted small" }, `Classifies a photo with ${d.model} v${d.version}, as the machine does.`));
  panel.replaceChildren(box);
  setupTryIt(box);
}

// ---- key --------------------------------------------------------------------------------------

$("rotate-key").addEventListener("click", async () => {
  const ask = "Make a new key? The current key stops working at once: restart the agent with the new one.";
  if (!(await confirmDialog(ask, { confirm: "Make a new key" }))) return;
  try {
    const made = await api(`${url}/key`, { method: "POST" });
    machine = made;
    showKey($("new-key"), made.key, `The new key of ${made.name}:`);
    renderStatus(machine);
  } catch (err) {
    showError(err);
  }
});

$("revoke-key").addEventListener("click", async () => {
  if (!(await confirmDialog("Revoke the key? The machine is locked out until you make a new key.", { confirm: "Revoke" }))) return;
  try {
    machine = await api(`${url}/key`, { method: "DELETE" });
    $("new-key").hidden = true;
    renderStatus(machine);
    toast("The key is revoked.", "ok");
  } catch (err) {
    showError(err);
  }
});

$("delete-machine").addEventListener("click", async () => {
  const ask = `Delete ${root.dataset.name}? Its captured images stay on the Data tab.`;
  if (!(await confirmDialog(ask, { confirm: "Delete" }))) return;
  try {
    await api(url, { method: "DELETE" });
    location.assign("/machines");
  } catch (err) {
    showError(err);
  }
});

// ---- start ------------------------------------------------------------------------------------

async function start() {
  [machine, models] = await Promise.all([api(url), api("/api/v1/models")]);
  renderStatus(machine);
  renderConfig(machine.config);
  renderDeployForm();
  renderTestPanel();
}

async function poll() {
  if (document.hidden) return;
  machine = await api(url);
  renderStatus(machine);
  renderTestPanel();
}

start()
  .catch(showError)
  .finally(() => (document.body.dataset.ready = "true"));
setInterval(() => poll().catch(showError), POLL_MS);
