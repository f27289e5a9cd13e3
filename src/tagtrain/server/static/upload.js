// Getting images in: files, folders (drag-and-drop with webkitGetAsEntry, or a folder picker) and
// zip archives. Each file has its own row with its progress and its own result or error.
// A file's path relative to the dropped folder goes as its multipart filename, so the server can
// tag it with its folder's name (tags_from_folders).

import { ApiError, plural, upload } from "./api.js";
import { TagInput } from "./tags.js";
import { toast } from "./toast.js";

// One request in flight at a time, carrying up to BATCH_FILES images (never more than BATCH_BYTES):
// fewer round trips for big folders, and the server's import is not run twice at once for a page.
const BATCH_FILES = 8;
const BATCH_BYTES = 16 * 1024 * 1024;
const STOPS_QUEUE = new Set([400, 401, 403]); // the request itself is wrong: the rest would fail too
// Every uploader on the page (the file dialog, the camera) sends through this one lane.
let lane = Promise.resolve();
const inLane = (fn) => {
  const run = lane.then(fn, fn);
  lane = run.catch(() => {});
  return run;
};
const skipped = (name) => name.startsWith(".") || name.includes("__MACOSX/");

/** Files of a drop, walking into folders. Call during the drop event (entries expire after it). */
export function filesFromDrop(dataTransfer) {
  const entries = [...dataTransfer.items]
    .filter((item) => item.kind === "file")
    .map((item) => item.webkitGetAsEntry?.() ?? item.getAsFile());
  return (async () => {
    const out = [];
    for (const entry of entries) {
      if (entry instanceof File) out.push({ file: entry, path: entry.name });
      else if (entry) await walk(entry, out);
    }
    return out.filter((f) => !skipped(f.file.name) && !skipped(f.path));
  })();
}

async function walk(entry, out) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.push({ file, path: entry.fullPath.replace(/^\//, "") });
    return;
  }
  const reader = entry.createReader();
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) return;
    for (const child of batch) await walk(child, out);
  }
}

/** Files of an <input type=file>, with their folder paths when it is a folder picker. */
export const filesFromInput = (input) =>
  [...input.files]
    .map((file) => ({ file, path: file.webkitRelativePath || file.name }))
    .filter((f) => !skipped(f.file.name));

/** What happened to the stored files of one request, in a few words. */
function describe(batch, res) {
  if (batch.length === 1 && res.added + res.existing > 1) {
    return [res.added && `${res.added} added`, res.existing && `${res.existing} already stored`].filter(Boolean).join(", ");
  }
  if (!res.existing) return "added";
  return res.added ? "stored" : "already stored";
}

/** The options every new image gets, read from an ingest-options fieldset. */
export class IngestOptions {
  constructor(fieldset) {
    this.fieldset = fieldset;
    this.tags = new TagInput(fieldset.querySelector(".tag-input"));
  }

  value() {
    const el = this.fieldset.elements;
    return {
      tags: this.tags.commit(),
      dataset: el.dataset.value.trim(),
      fromFolders: Boolean(el.tags_from_folders?.checked),
    };
  }
}

export class Uploader {
  constructor({ list, summary, options, onDone = () => {} }) {
    Object.assign(this, { list, summary, options, onDone });
    this.queue = [];
    this.sending = false;
    this.totals = { files: 0, done: 0, added: 0, existing: 0, failed: 0 };
  }

  /** Queue files ({file, path}) with the options as they are now. */
  add(files) {
    if (!files.length) return toast("Nothing to add: no files were found there.", "error");
    if (!this.sending && !this.queue.length) {
      this.totals = { files: 0, done: 0, added: 0, existing: 0, failed: 0 };
    }
    const opts = this.options.value();
    for (const f of files) this.queue.push({ ...f, opts, row: this.row(f.path) });
    this.totals.files += files.length;
    this.update();
    if (!this.sending) this.pump();
  }

  row(path) {
    const li = document.createElement("li");
    li.className = "upload-row waiting";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = path;
    name.title = path;
    const bar = document.createElement("progress");
    bar.max = 1;
    bar.value = 0;
    bar.setAttribute("aria-label", `Upload of ${path}`);
    const note = document.createElement("span");
    note.className = "note";
    note.textContent = "waiting";
    li.append(name, bar, note);
    this.list.prepend(li);
    return li;
  }

  /** The next request: one zip alone, or up to BATCH_FILES images of the same options. */
  take() {
    const first = this.queue.shift();
    const batch = [first];
    let bytes = first.file.size;
    const isZip = (job) => /\.zip$/i.test(job.file.name) || job.file.type.includes("zip");
    while (!isZip(first) && this.queue.length && batch.length < BATCH_FILES) {
      const job = this.queue[0];
      if (isZip(job) || job.opts !== first.opts || bytes + job.file.size > BATCH_BYTES) break;
      batch.push(this.queue.shift());
      bytes += job.file.size;
    }
    return batch;
  }

  // One request at a time: a batch of files per request keeps big folders fast.
  async pump() {
    this.sending = true;
    while (this.queue.length) {
      const batch = this.take();
      const { opts } = batch[0];
      const form = new FormData();
      for (const job of batch) {
        form.append("files", job.file, job.path);
        job.row.className = "upload-row sending";
        job.row.querySelector(".note").textContent = "sending";
      }
      for (const t of opts.tags) form.append("tags", t);
      if (opts.dataset) form.append("dataset", opts.dataset);
      form.append("tags_from_folders", opts.fromFolders ? "true" : "false");
      try {
        const res = await inLane(() => upload("/api/v1/images", form, (p) => this.progress(batch, p)));
        this.result(batch, res);
      } catch (err) {
        for (const job of batch) this.fail(job.row, err.message);
        if (err instanceof ApiError && STOPS_QUEUE.has(err.status)) this.stop(err.message);
      }
      this.totals.done += batch.length;
      this.update();
    }
    this.sending = false;
    this.finish();
  }

  /** Spread the request's progress over its files, in the order they go out. */
  progress(batch, fraction) {
    const total = batch.reduce((n, j) => n + j.file.size, 0) || 1;
    let sent = fraction * total;
    for (const job of batch) {
      job.row.querySelector("progress").value = Math.max(0, Math.min(1, sent / (job.file.size || 1)));
      sent -= job.file.size;
    }
  }

  result(batch, res) {
    this.totals.added += res.added;
    this.totals.existing += res.existing;
    const reasons = new Map(); // job -> its rejections (a zip can have several)
    for (const r of res.rejected) {
      const job = batch.find((j) => r.name === j.path) ?? batch.find((j) => r.name.startsWith(`${j.path}:`)) ?? batch[0];
      reasons.set(job, [...(reasons.get(job) ?? []), r.name === job.path ? r.reason : `${r.name}: ${r.reason}`]);
    }
    const stored = describe(batch, res);
    for (const job of batch) {
      job.row.querySelector("progress").value = 1;
      const why = reasons.get(job);
      if (!why) {
        job.row.className = "upload-row ok";
        job.row.querySelector(".note").textContent = stored;
        continue;
      }
      const partial = batch.length === 1 && res.added + res.existing > 0; // a zip, partly stored
      this.totals.failed += 1;
      job.row.className = `upload-row ${partial ? "partial" : "failed"}`;
      job.row.querySelector(".note").textContent = [partial ? stored : "", ...why].filter(Boolean).join(" · ");
    }
  }

  fail(row, message) {
    this.totals.failed += 1;
    row.className = "upload-row failed";
    row.querySelector(".note").textContent = message;
  }

  stop(message) {
    for (const job of this.queue.splice(0)) {
      this.totals.done += 1;
      this.fail(job.row, `not sent: ${message}`);
    }
  }

  update() {
    const t = this.totals;
    const doing = t.done < t.files ? `Sending ${t.done + 1}–${Math.min(t.files, t.done + BATCH_FILES)} of ${t.files}… ` : `${plural(t.files, "file")} sent. `;
    const failed = t.failed ? `, ${plural(t.failed, "file")} with problems (see below)` : "";
    this.summary.textContent = `${doing}${t.added.toLocaleString("en-US")} added, ${t.existing.toLocaleString("en-US")} already stored${failed}.`;
    this.summary.classList.toggle("has-errors", t.failed > 0);
  }

  finish() {
    const t = this.totals;
    if (t.failed) toast(`${plural(t.failed, "file")} could not be added; the list says why.`, "error");
    else toast(`Added ${plural(t.added, "image")}${t.existing ? ` (${t.existing} already stored)` : ""}.`, "ok");
    this.onDone(t);
  }
}
