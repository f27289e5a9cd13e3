// The bar of bulk actions on the selected images: add or remove tags, add to or remove from a
// dataset (created when the name is new), delete after a confirmation. A selection is either
// explicit ids or "everything matching the filter", which the API takes as {filter}.

import { api, plural } from "./api.js";
import { apiBody } from "./filters.js";
import { TagInput } from "./tags.js";
import { confirmDialog, showError, toast } from "./toast.js";

export class BulkBar {
  /** `ctx`: {grid, filter(), total(), refresh(), knownDatasets()} supplied by the data tab. */
  constructor(bar, ctx) {
    this.bar = bar;
    this.ctx = ctx;
    this.tags = new TagInput(bar.querySelector("#bulk-tags"));
    this.dataset = bar.querySelector("#bulk-dataset");
    this.count = bar.querySelector("#sel-count");
    bar.addEventListener("click", (e) => {
      const act = e.target.closest("[data-act]")?.dataset.act;
      if (act) this.run(act, e.target.closest("button"));
    });
  }

  /** Show the bar for a selection from the grid (see Grid.selection). */
  show(sel) {
    this.sel = sel;
    const size = sel.all ? this.ctx.total() : sel.size;
    this.bar.hidden = !sel.all && sel.size === 0;
    document.body.classList.toggle("has-selection", !this.bar.hidden);
    let text = `${plural(size, "image")} selected`;
    if (sel.all) text = size === 1 ? "The 1 image matching the filter selected" : `All ${size === null ? "" : plural(size, "image")} matching the filter selected`;
    this.count.textContent = text;
  }

  body() {
    // "all": the person chose every image matching the filter, even when the filter is empty.
    return this.sel.all ? { filter: apiBody(this.ctx.filter()), all: true } : { ids: this.sel.ids };
  }

  async run(act, button) {
    if (act === "clear") return this.ctx.grid.clearSelection();
    const actions = {
      "add-tags": () => this.editTags(true),
      "remove-tags": () => this.editTags(false),
      "add-ds": () => this.membership(true),
      "remove-ds": () => this.membership(false),
      delete: () => this.remove(),
    };
    button.disabled = true;
    try {
      await actions[act]();
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
    }
  }

  async editTags(adding) {
    const names = this.tags.commit();
    if (!names.length) {
      toast("Type the tags first (Enter after each).", "error");
      this.tags.input.focus();
      return;
    }
    const add = adding ? names : [];
    const remove = adding ? [] : names;
    const res = await api("/api/v1/images/tags", { method: "POST", body: { ...this.body(), add, remove } });
    const n = adding ? res.added : res.removed;
    toast(`${adding ? "Added" : "Removed"} ${names.join(", ")}: ${plural(n, "change")}.`, "ok");
    this.tags.clear();
    if (this.sel.all) return this.ctx.refresh({ keepSelection: false });
    this.ctx.grid.editTags(this.sel.ids, add, remove);
    this.ctx.refresh({ grid: false });
  }

  async membership(adding) {
    const name = this.dataset.value.trim();
    if (!name) {
      toast("Type or pick a dataset first.", "error");
      this.dataset.focus();
      return;
    }
    const known = this.ctx.knownDatasets().includes(name);
    if (adding && !known) {
      await api("/api/v1/datasets", { method: "POST", body: { name } });
      toast(`Created dataset “${name}”.`, "ok");
    }
    const path = `/api/v1/datasets/${encodeURIComponent(name)}/images${adding ? "" : "/remove"}`;
    const res = await api(path, { method: "POST", body: this.body() });
    toast(
      `${plural(res.changed, "image")} ${adding ? "added to" : "removed from"} “${name}”.`,
      "ok",
      { link: { href: `/datasets/${encodeURIComponent(name)}`, text: "Open the dataset" } },
    );
    this.ctx.refresh({ grid: this.sel.all || this.ctx.filter().dataset === name });
  }

  async remove() {
    const size = this.sel.all ? this.ctx.total() : this.sel.size;
    const what = this.sel.all ? `all ${plural(size ?? 0, "image")} matching the filter` : plural(size, "image");
    const sure = await confirmDialog(
      `Delete ${what}? Their files, tags and dataset memberships go too. This cannot be undone.`,
      { confirm: `Delete ${plural(size ?? 0, "image")}` },
    );
    if (!sure) return;
    const res = await api("/api/v1/images/delete", { method: "POST", body: this.body() });
    toast(`Deleted ${plural(res.count, "image")}.`, "ok");
    if (this.sel.all) return this.ctx.refresh({});
    this.ctx.grid.drop(this.sel.ids);
    this.ctx.refresh({ grid: false });
  }
}
