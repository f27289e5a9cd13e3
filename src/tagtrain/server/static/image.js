// The image view: one image large with its tags, datasets and metadata, and keyboard labeling.
// Keys 1-9 apply the first nine labels (the current dataset's tags, else all tags, alphabetical,
// or the list given in ?labels=a,b,c); arrows walk the filtered list the page came from.

import { api, cleanTag, plural } from "./api.js";
import { apiQuery, pageQuery, readFilter } from "./filters.js";
import { loadDatasetOptions, loadTagOptions } from "./tags.js";
import { confirmDialog, showError, toast } from "./toast.js";
import { renderChips, renderMeta } from "./image_parts.js";

const $ = (id) => document.getElementById(id);
const filter = readFilter();
const ownLabels = new URLSearchParams(location.search).get("labels");
const cache = new Map();
let image = null;
let nav = { previous: null, next: null };
let labels = [];
let work = Promise.resolve();
// The images walked forward from, so that ← returns to the one just labeled even when labeling
// took it out of the filtered list (e.g. "untagged").
const trail = [];

/** Run `fn` after everything queued before it (key presses apply in order), showing errors. */
const queue = (fn) => (work = work.then(fn).catch((err) => showError(err)));

function pageUrl(id) {
  const q = pageQuery(filter);
  if (ownLabels) q.set("labels", ownLabels);
  return `/images/${id}${q.size ? `?${q}` : ""}`;
}

function detail(id) {
  if (!cache.has(id)) {
    const p = api(`/api/v1/images/${id}`);
    p.catch(() => cache.delete(id));
    cache.set(id, p);
  }
  return cache.get(id);
}

function prefetch(id) {
  if (id === null) return;
  detail(id).then((img) => (new Image().src = img.original_url), () => {});
}

async function show(id, push = true) {
  const [img, nb] = await Promise.all([
    detail(id),
    api(`/api/v1/images/${id}/neighbors`, { query: apiQuery(filter) }),
  ]);
  image = img;
  nav = nb;
  if (push) history.pushState({ id }, "", pageUrl(id));
  render();
  prefetch(nb.next);
  prefetch(nb.previous);
}

function render() {
  const photo = $("photo");
  photo.src = image.original_url;
  photo.alt = image.original_name || `image ${image.id}`;
  document.title = `${photo.alt} · tagtrain`;
  $("position").textContent = `${(nav.newer + 1).toLocaleString("en-US")} of ${plural(nav.total, "image")}`;
  $("prev").disabled = nav.previous === null && !trail.length;
  $("next").disabled = nav.next === null;
  $("original-link").href = image.original_url;
  renderChips($("tags"), image.tags, "No tags yet.", (t) => queue(() => editTags([], [t])));
  renderChips($("datasets"), image.datasets, "In no dataset.", (d) => queue(() => leave(d)), (d) => `/datasets/${encodeURIComponent(d)}`);
  renderMeta($("meta"), image);
  renderKeys();
}

function renderKeys() {
  $("keys").replaceChildren(
    ...labels.map((label, i) => {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.className = image?.tags.includes(label) ? "key on" : "key";
      b.setAttribute("aria-pressed", String(Boolean(image?.tags.includes(label))));
      b.setAttribute("aria-keyshortcuts", String(i + 1));
      const kbd = document.createElement("kbd");
      kbd.textContent = String(i + 1);
      b.append(kbd, ` ${label}`);
      b.addEventListener("click", () => queue(() => applyLabel(label)));
      li.append(b);
      return li;
    }),
  );
  if (!labels.length) $("keys").innerHTML = "<li class='muted'>No labels yet: add a tag below, or list labels under “Change the keys”.</li>";
}

async function loadLabels() {
  let names = [];
  let source = "";
  if (ownLabels) {
    names = ownLabels.split(",").map(cleanTag).filter(Boolean);
    source = "(your list)";
  } else {
    if (filter.dataset) {
      const ds = await api(`/api/v1/datasets/${encodeURIComponent(filter.dataset)}`);
      names = Object.keys(ds.tag_counts).sort();
      source = `(tags of “${filter.dataset}”)`;
    }
    if (!names.length) {
      names = (await loadTagOptions()).filter((t) => t.count > 0).map((t) => t.name).sort();
      source = "(all tags)";
    }
  }
  labels = names.slice(0, 9);
  $("keys-source").textContent = labels.length ? source : "";
  const keysInput = $("keys-input");
  // Never overwrite what a person is typing (this runs again after every image loads).
  if (document.activeElement !== keysInput) keysInput.value = labels.join(", ");
}

async function editTags(add, remove) {
  if (!add.length && !remove.length) return;
  await api("/api/v1/images/tags", { method: "POST", body: { ids: [image.id], add, remove } });
  image.tags = [...new Set([...image.tags, ...add])].filter((t) => !remove.includes(t)).sort();
  render();
}

async function applyLabel(label) {
  const single = $("one-label").checked;
  const has = image.tags.includes(label);
  const others = image.tags.filter((t) => labels.includes(t) && t !== label);
  if (single) await editTags(has ? [] : [label], others);
  else await editTags(has ? [] : [label], has ? [label] : []);
  flash(label);
  if (!single) return;
  if (nav.next !== null) await go("next");
  else toast("That was the last image in this list.", "ok");
}

function flash(label) {
  const b = [...$("keys").querySelectorAll("button")].find((x) => x.textContent.endsWith(` ${label}`));
  b?.classList.add("flash");
  setTimeout(() => b?.classList.remove("flash"), 300);
}

async function join(name) {
  const known = (await loadDatasetOptions()).some((d) => d.name === name);
  if (!known) await api("/api/v1/datasets", { method: "POST", body: { name } });
  await api(`/api/v1/datasets/${encodeURIComponent(name)}/images`, { method: "POST", body: { ids: [image.id] } });
  image.datasets = [...new Set([...image.datasets, name])].sort();
  render();
  toast(`Added to “${name}”${known ? "" : " (a new dataset)"}.`, "ok");
}

async function leave(name) {
  await api(`/api/v1/datasets/${encodeURIComponent(name)}/images/remove`, { method: "POST", body: { ids: [image.id] } });
  image.datasets = image.datasets.filter((d) => d !== name);
  render();
}

async function go(where) {
  if (where === "previous" && trail.length) return show(trail.pop());
  const id = nav[where];
  if (id === null) return toast(where === "next" ? "This is the last image in the list." : "This is the first image in the list.");
  if (where === "next") trail.push(image.id);
  await show(id);
}

async function remove() {
  if (!(await confirmDialog(`Delete “${image.original_name}”? Its file and tags go too; this cannot be undone.`))) return;
  await api(`/api/v1/images/${image.id}`, { method: "DELETE" });
  toast("Image deleted.", "ok");
  const after = nav.next ?? nav.previous;
  if (after === null) location.href = $("back").href;
  else await show(after);
}

// Keys and controls.
document.addEventListener("keydown", (e) => {
  if (e.target.closest("input, textarea, select, [contenteditable]") || e.altKey || e.ctrlKey || e.metaKey) return;
  if (document.querySelector("dialog[open]")) return;
  if (/^[1-9]$/.test(e.key) && !e.repeat) {
    const label = labels[Number(e.key) - 1];
    if (label) queue(() => applyLabel(label));
    else toast(`No label on key ${e.key}: list up to nine under “Change the keys”.`);
  } else if (e.key === "ArrowRight" || e.key === "j") queue(() => go("next"));
  else if (e.key === "ArrowLeft" || e.key === "k") queue(() => go("previous"));
  else if (e.key === "Escape") location.href = $("back").href;
  else return;
  e.preventDefault();
});
$("prev").addEventListener("click", () => queue(() => go("previous")));
$("next").addEventListener("click", () => queue(() => go("next")));
$("delete-image").addEventListener("click", () => queue(remove));
$("add-tag").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = e.target.querySelector("input");
  const names = input.value.split(",").map(cleanTag).filter(Boolean);
  input.value = "";
  queue(async () => {
    await editTags(names, []);
    loadTagOptions();
  });
});
$("add-dataset").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = e.target.querySelector("input");
  const name = input.value.trim();
  input.value = "";
  if (name) queue(() => join(name));
});
function applyKeyLabels(value) {
  const q = new URLSearchParams(location.search);
  q.set("labels", value.split(",").map(cleanTag).filter(Boolean).join(","));
  if (q.toString() !== location.search.slice(1)) location.search = q.toString();
}
$("keys-input").addEventListener("change", (e) => applyKeyLabels(e.target.value));
// Enter (a phone keyboard's "Go") applies the list even where no change event fires.
$("keys-input").addEventListener("keydown", (e) => {
  if (e.key === "Enter") applyKeyLabels(e.target.value);
});
const one = $("one-label");
one.checked = localStorage.getItem("tagtrain.oneLabel") !== "false";
one.addEventListener("change", () => localStorage.setItem("tagtrain.oneLabel", String(one.checked)));
window.addEventListener("popstate", (e) => queue(() => show(e.state?.id ?? Number($("viewer").dataset.imageId), false)));

// Start.
$("back").href = `/${pageQuery(filter).size ? `?${pageQuery(filter)}` : ""}`;
const first = Number($("viewer").dataset.imageId);
history.replaceState({ id: first }, "", location.href);
queue(async () => {
  await Promise.all([loadLabels(), loadDatasetOptions(), show(first, false)]);
  renderKeys();
  document.body.dataset.ready = "true";
});
