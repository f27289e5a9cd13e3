// Tag entry with autocomplete: a row of removable chips and an input bound to the page's
// <datalist id="tag-options"> (filled from GET /api/v1/tags). Enter, comma or picking a suggestion
// adds a chip. Also keeps the page's datalists of tags and datasets fresh.

import { api, cleanTag } from "./api.js";
import { showError } from "./toast.js";

export class TagInput {
  /**
   * `root` holds `.chips` and an <input>; `onChange(tags)` runs after every add or remove.
   * With `commitOnBlur`, leaving the input turns what is typed into a chip; forms whose button
   * reads the value call `commit()` themselves instead (a chip appearing on blur would move the
   * button away from under the pointer and swallow the click).
   */
  constructor(root, onChange = () => {}, { commitOnBlur = false } = {}) {
    this.root = root;
    this.input = root.querySelector("input");
    this.chips = root.querySelector(".chips");
    this.onChange = onChange;
    this.items = [];
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === ",") {
        if (this.input.value.trim()) e.preventDefault();
        this.commit();
      } else if (e.key === "Backspace" && !this.input.value && this.items.length) {
        this.remove(this.items[this.items.length - 1]);
      }
    });
    // Picking a datalist suggestion fires `input` with no key press: take it at once.
    this.input.addEventListener("input", (e) => {
      if (e.inputType === "insertReplacementText" || !e.inputType) this.commitIfKnown();
    });
    if (commitOnBlur) this.input.addEventListener("blur", () => this.commit());
  }

  commitIfKnown() {
    const list = document.getElementById(this.input.getAttribute("list"));
    const known = [...(list?.options ?? [])].some((o) => o.value === this.input.value);
    if (known) this.commit();
  }

  /** Turn what is typed into chips; returns the tag list. */
  commit() {
    const typed = this.input.value.split(",").map(cleanTag).filter(Boolean);
    this.input.value = "";
    const fresh = typed.filter((t) => !this.items.includes(t));
    if (fresh.length) {
      this.items.push(...fresh);
      this.render();
      this.onChange(this.items.slice());
    }
    return this.value();
  }

  remove(tag) {
    this.items = this.items.filter((t) => t !== tag);
    this.render();
    this.onChange(this.items.slice());
  }

  set(tags) {
    this.items = tags.slice();
    this.render();
  }

  value() {
    return this.items.slice();
  }

  clear() {
    this.input.value = "";
    this.set([]);
  }

  render() {
    this.chips.replaceChildren(
      ...this.items.map((tag) => {
        const chip = document.createElement("span");
        chip.className = "chip";
        chip.textContent = tag;
        const x = document.createElement("button");
        x.type = "button";
        x.className = "chip-x";
        x.setAttribute("aria-label", `Remove ${tag}`);
        x.textContent = "✕";
        x.addEventListener("click", () => this.remove(tag));
        chip.append(x);
        return chip;
      }),
    );
  }
}

/** Fill <datalist id="tag-options"> with every tag (most used first); resolves to the tag list. */
export async function loadTagOptions() {
  try {
    const tags = await api("/api/v1/tags");
    fill("tag-options", tags.map((t) => [t.name, `${t.count.toLocaleString("en-US")} images`]));
    return tags;
  } catch (err) {
    showError(err, "The tag list could not be loaded");
    return [];
  }
}

/** Fill <datalist id="dataset-options"> and any `selects`; resolves to the datasets. */
export async function loadDatasetOptions(selects = []) {
  try {
    const datasets = await api("/api/v1/datasets");
    fill("dataset-options", datasets.map((d) => [d.name, `${d.images.toLocaleString("en-US")} images`]));
    for (const select of selects) {
      const keep = select.value;
      const first = select.options[0];
      select.replaceChildren(first, ...datasets.map((d) => new Option(d.name, d.name)));
      if (keep && !datasets.some((d) => d.name === keep)) select.append(new Option(keep, keep));
      select.value = keep;
    }
    return datasets;
  } catch (err) {
    showError(err, "The dataset list could not be loaded");
    return [];
  }
}

function fill(id, pairs) {
  const list = document.getElementById(id);
  if (!list) return;
  list.replaceChildren(
    ...pairs.map(([value, label]) => {
      const o = document.createElement("option");
      o.value = value;
      o.label = label;
      return o;
    }),
  );
}
