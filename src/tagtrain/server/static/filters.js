// The image filter: one plain object {tags, match, untagged, dataset, source, machine, since,
// until}, read from and written to the page URL (the API's own query names), sent to the API as a
// query string (list, count) or a JSON body (bulk actions). Dates are days (YYYY-MM-DD) in the URL
// and local-midnight instants for the API; `until` includes its whole day.

import { TagInput } from "./tags.js";

export const EMPTY = Object.freeze({
  tags: [],
  match: "any",
  untagged: false,
  dataset: "",
  source: "",
  machine: "",
  since: "",
  until: "",
});

/** The filter in a URL's query string (the page's own URL by default). */
export function readFilter(search = location.search) {
  const p = new URLSearchParams(search);
  return {
    tags: p.getAll("tag"),
    match: p.get("match") === "all" ? "all" : "any",
    untagged: p.get("untagged") === "true",
    dataset: p.get("dataset") ?? "",
    source: p.get("source") ?? "",
    machine: p.get("machine") ?? "",
    since: p.get("since") ?? "",
    until: p.get("until") ?? "",
  };
}

/** Query parameters for page URLs: only what differs from the empty filter. */
export function pageQuery(f) {
  const p = new URLSearchParams();
  for (const t of f.tags) p.append("tag", t);
  if (f.tags.length > 1 && f.match === "all") p.set("match", "all");
  if (f.untagged) p.set("untagged", "true");
  for (const key of ["dataset", "source", "machine", "since", "until"]) {
    if (f[key]) p.set(key, f[key]);
  }
  return p;
}

const startOfDay = (day, plusDays = 0) => {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(y, m - 1, d + plusDays).toISOString();
};

/** Query parameters for GET /api/v1/images and /count. */
export function apiQuery(f) {
  const p = pageQuery(f);
  if (f.since) p.set("since", startOfDay(f.since));
  if (f.until) p.set("until", startOfDay(f.until, 1));
  return p;
}

/** The `filter` of a bulk-action body (the API's ImageFilter). */
export function apiBody(f) {
  const body = { tags: f.tags, match: f.match, untagged: f.untagged };
  for (const key of ["dataset", "source", "machine"]) if (f[key]) body[key] = f[key];
  if (f.since) body.since = startOfDay(f.since);
  if (f.until) body.until = startOfDay(f.until, 1);
  return body;
}

export const isEmpty = (f) => pageQuery(f).toString() === "";

/** How many filter fields are set, for the badge on a collapsed filter panel. */
export const activeCount = (f) =>
  f.tags.length + ["untagged", "dataset", "source", "machine", "since", "until"].filter((k) => f[k]).length;

/** The filter form of the data tab: shows a filter, and reports every change with `onChange`. */
export class FilterForm {
  constructor(form, onChange) {
    this.form = form;
    this.onChange = onChange;
    this.tags = new TagInput(form.querySelector("#filter-tags"), () => this.changed(), {
      commitOnBlur: true,
    });
    form.addEventListener("change", (e) => {
      if (!e.target.closest(".tag-input")) this.changed();
    });
    form.addEventListener("submit", (e) => e.preventDefault());
    form.addEventListener("reset", (e) => {
      e.preventDefault();
      this.show(EMPTY);
      this.changed();
    });
  }

  /** Put `f` into the form's fields without reporting a change. */
  show(f) {
    const el = this.form.elements;
    this.tags.set(f.tags);
    el.match.value = f.match;
    el.untagged.checked = f.untagged;
    for (const key of ["dataset", "source", "machine", "since", "until"]) {
      const field = el[key];
      if (field.tagName === "SELECT" && f[key] && ![...field.options].some((o) => o.value === f[key])) {
        field.append(new Option(f[key], f[key])); // a name from the URL the page has not listed
      }
      field.value = f[key];
    }
  }

  value() {
    const el = this.form.elements;
    return {
      tags: this.tags.value(),
      match: el.match.value === "all" ? "all" : "any",
      untagged: el.untagged.checked,
      dataset: el.dataset.value,
      source: el.source.value,
      machine: el.machine.value,
      since: el.since.value,
      until: el.until.value,
    };
  }

  changed() {
    this.onChange(this.value());
  }
}
