// The data tab: wires the filter form, the live count, the grid, the bulk bar, uploads (drop,
// pickers, phone camera) and the browser camera together. The filter lives in the page URL, so a
// filtered view can be bookmarked and the image view can walk the same list.

import { api, plural } from "./api.js";
import { BulkBar } from "./bulk.js";
import { Camera } from "./camera.js";
import { FilterForm, activeCount, apiQuery, isEmpty, pageQuery, readFilter } from "./filters.js";
import { Grid } from "./grid.js";
import { loadDatasetOptions, loadTagOptions } from "./tags.js";
import { showError, toast } from "./toast.js";
import { IngestOptions, Uploader, filesFromDrop, filesFromInput } from "./upload.js";

const $ = (id) => document.getElementById(id);
let filter = readFilter();
let total = null;
let datasets = [];
let countSeq = 0;

const grid = new Grid({
  grid: $("grid"),
  sentinel: $("sentinel"),
  status: $("grid-status"),
  onSelect: (sel) => bulk.show(sel),
  onLoaded: (n, done) => showEmpty(n === 0 && done),
});
const bulk = new BulkBar($("bulkbar"), {
  grid,
  filter: () => filter,
  total: () => total,
  refresh,
  knownDatasets: () => datasets.map((d) => d.name),
});
const form = new FilterForm($("filter-form"), (f) => {
  filter = f;
  const q = pageQuery(f).toString();
  history.replaceState(null, "", q ? `/?${q}` : "/");
  clearTimeout(form.timer);
  form.timer = setTimeout(apply, 120);
});

async function updateCount() {
  const seq = ++countSeq;
  const el = $("count");
  try {
    const { count } = await api("/api/v1/images/count", { query: apiQuery(filter) });
    if (seq !== countSeq) return;
    total = count;
    el.classList.remove("error");
    el.textContent = isEmpty(filter) ? plural(count, "image") : `${plural(count, "image")} match the filter`;
    $("select-all").textContent = `Select all ${count.toLocaleString("en-US")}`;
    $("select-all").disabled = count === 0;
    if (grid.allMatching) bulk.show(grid.selection());
  } catch (err) {
    if (seq !== countSeq) return;
    total = null;
    el.classList.add("error");
    el.textContent = err.message;
    showError(err, "This filter cannot be applied");
  }
}

function showEmpty(empty) {
  $("empty").hidden = !empty;
  if (empty && !isEmpty(filter)) {
    $("empty").querySelector("h2").textContent = "No image matches this filter";
    $("empty-text").textContent = "Change or clear the filters to see more images.";
  }
}

function apply() {
  const n = activeCount(filter);
  $("filter-badge").hidden = n === 0;
  $("filter-badge").textContent = String(n);
  $("label-link").href = `/label?${pageQuery(filter)}`;
  showEmpty(false);
  updateCount();
  grid.reset(filter);
}

/** After a change: recount, reload the tag and dataset lists, and (unless told not) the grid. */
async function refresh({ grid: reload = true } = {}) {
  updateCount();
  loadTagOptions();
  datasets = await loadDatasetOptions([$("filter-dataset")]);
  if (reload) grid.reset(filter);
}

// Getting images in.
const uploader = new Uploader({
  list: $("upload-list"),
  summary: $("upload-summary"),
  options: new IngestOptions($("upload-options")),
  onDone: () => refresh(),
});
const camera = new Camera(
  $("camera-dialog"),
  new Uploader({
    list: $("camera-list"),
    summary: $("camera-summary"),
    options: new IngestOptions($("camera-options")),
    onDone: () => refresh(),
  }),
);

function addFiles(files) {
  if (!$("upload-dialog").open) $("upload-dialog").showModal();
  uploader.add(files);
}

$("open-upload").addEventListener("click", () => $("upload-dialog").showModal());
$("open-camera").addEventListener("click", () => camera.open());
for (const id of ["file-input", "folder-input", "phone-input"]) {
  $(id).addEventListener("change", (e) => {
    addFiles(filesFromInput(e.target));
    e.target.value = "";
  });
}
$("dropzone").addEventListener("keydown", (e) => {
  if (e.key === "Enter" || e.key === " ") $("file-input").click();
});

const hasFiles = (e) => [...(e.dataTransfer?.types ?? [])].includes("Files");
let dragDepth = 0;
document.addEventListener("dragenter", (e) => {
  if (!hasFiles(e)) return;
  dragDepth += 1;
  $("drop-overlay").hidden = false;
});
document.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) $("drop-overlay").hidden = true;
});
document.addEventListener("dragover", (e) => hasFiles(e) && e.preventDefault());
document.addEventListener("drop", (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  dragDepth = 0;
  $("drop-overlay").hidden = true;
  filesFromDrop(e.dataTransfer).then(addFiles, (err) => showError(err, "The dropped files could not be read"));
});

// Selection shortcuts.
$("select-all").addEventListener("click", () => grid.selectAllMatching());
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && !document.querySelector("dialog[open]")) grid.clearSelection();
});

// Start.
if (matchMedia("(max-width: 760px)").matches) $("filter-panel").open = false;
if (new URLSearchParams(location.search).get("empty") === "label") {
  toast("No image matches that filter, so there is nothing to label.", "info");
  history.replaceState(null, "", `/?${pageQuery(filter)}`);
}
form.show(filter);
datasets = await loadDatasetOptions([$("filter-dataset")]);
form.show(filter);
loadTagOptions();
apply();
document.body.dataset.ready = "true";
