// The thumbnail grid: pages of the filtered list (newest first, keyset cursor) appended as the
// sentinel below the grid scrolls near the viewport; thumbnails load lazily as they come into view.
// Selection: the checkbox (or any click once something is selected) toggles one image, shift-click
// selects the range from the last clicked one, and "all matching" selects the whole filter.

import { api } from "./api.js";
import { apiQuery, pageQuery } from "./filters.js";
import { showError, toast } from "./toast.js";

const PAGE = 120;
const AHEAD = 1500; // px below the viewport at which the next page starts loading
// px around the viewport within which a thumbnail loads. Our own observer rather than
// loading="lazy", whose distance Chromium scales with its guess of the network's speed (from
// ~1250 px to several screens on a busy machine), so a page's thumbnails all loaded at once.
const THUMB_AHEAD = 800;

export class Grid {
  constructor({ grid, sentinel, status, onSelect = () => {}, onLoaded = () => {} }) {
    Object.assign(this, { grid, sentinel, status, onSelect, onLoaded });
    this.tiles = []; // {id, tags, el} in display order
    this.byId = new Map();
    this.selected = new Set();
    this.allMatching = false;
    this.anchor = null;
    this.generation = 0;
    // An observer entry can be stale (queued before the last page went in): look again.
    const io = new IntersectionObserver(
      (es) => es.some((e) => e.isIntersecting) && this.near() && this.more(),
      { rootMargin: `0px 0px ${AHEAD}px 0px` },
    );
    io.observe(sentinel);
    this.thumbs = new IntersectionObserver((es) => this.showThumbs(es), {
      rootMargin: `${THUMB_AHEAD}px 0px`,
    });
    grid.addEventListener("click", (e) => this.click(e));
  }

  /** Show the images matching `filter` from the start. */
  reset(filter) {
    this.generation += 1;
    this.filter = filter;
    this.linkQuery = pageQuery(filter).toString();
    this.cursor = null;
    this.done = false;
    this.loading = false;
    this.tiles = [];
    this.byId.clear();
    this.thumbs.disconnect();
    this.grid.replaceChildren();
    this.clearSelection();
    return this.more();
  }

  async more() {
    if (this.loading || this.done || !this.filter) return;
    const gen = this.generation;
    this.loading = true;
    this.status.textContent = "Loading…";
    const q = apiQuery(this.filter);
    q.set("limit", String(PAGE));
    if (this.cursor) q.set("cursor", String(this.cursor));
    try {
      const page = await api("/api/v1/images", { query: q });
      if (gen !== this.generation) return;
      this.append(page.items);
      this.cursor = page.next_cursor;
      this.done = page.next_cursor === null;
      this.status.textContent = this.done && this.tiles.length > PAGE ? "That is all of them." : "";
      this.onLoaded(this.tiles.length, this.done);
    } catch (err) {
      if (gen !== this.generation) return;
      this.status.textContent = `The images could not be loaded: ${err.message}`;
      showError(err, "The images could not be loaded");
      this.done = true;
      return;
    } finally {
      if (gen === this.generation) this.loading = false;
    }
    if (this.near() && !this.done) this.more();
  }

  /** Whether the sentinel below the grid is within AHEAD px of the viewport now. */
  near() {
    return this.sentinel.getBoundingClientRect().top < innerHeight + AHEAD;
  }

  append(items) {
    const frag = document.createDocumentFragment();
    for (const item of items) {
      const tile = { id: item.id, tags: item.tags, el: this.tile(item) };
      tile.index = this.tiles.length;
      this.tiles.push(tile);
      this.byId.set(item.id, tile);
      if (this.allMatching) this.mark(tile, true);
      frag.append(tile.el);
    }
    this.grid.append(frag);
  }

  tile(item) {
    const el = document.createElement("div");
    el.className = "tile";
    el.setAttribute("role", "listitem");
    el.dataset.id = item.id;
    const link = document.createElement("a");
    link.className = "thumb";
    link.href = `/images/${item.id}${this.linkQuery ? `?${this.linkQuery}` : ""}`;
    const img = document.createElement("img");
    img.decoding = "async";
    img.width = 256;
    img.height = 256;
    img.alt = item.original_name || `image ${item.id}`;
    img.dataset.src = item.thumbnail_url; // set as src when it comes near (showThumbs)
    this.thumbs.observe(img);
    img.addEventListener("error", () => el.classList.add("broken"), { once: true });
    link.append(img);
    const pick = document.createElement("input");
    pick.type = "checkbox";
    pick.className = "pick";
    pick.setAttribute("aria-label", `Select ${img.alt}`);
    const tags = document.createElement("p");
    tags.className = "tile-tags";
    el.append(link, pick, tags);
    this.showTags(el, item.tags);
    return el;
  }

  showThumbs(entries) {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      e.target.src = e.target.dataset.src;
      this.thumbs.unobserve(e.target);
    }
  }

  showTags(el, tags) {
    const p = el.querySelector(".tile-tags");
    p.textContent = tags.length ? tags.join(", ") : "untagged";
    p.classList.toggle("none", !tags.length);
    p.title = p.textContent;
  }

  click(e) {
    const el = e.target.closest(".tile");
    if (!el) return;
    const tile = this.byId.get(Number(el.dataset.id));
    const onPick = e.target.classList.contains("pick");
    if (!onPick && (e.ctrlKey || e.metaKey)) return; // open in a new tab, as links do
    const selecting = onPick || e.shiftKey || this.selected.size > 0 || this.allMatching;
    if (!selecting) return; // a plain click opens the image
    if (!onPick) e.preventDefault();
    if (this.allMatching) {
      e.preventDefault();
      toast("Every image matching the filter is selected; clear the selection to pick single ones.");
      return;
    }
    if (e.shiftKey && this.anchor !== null) {
      this.range(this.anchor, tile.index);
      if (onPick) e.target.checked = true;
    } else {
      this.mark(tile, !this.selected.has(tile.id));
    }
    this.anchor = tile.index;
    this.onSelect(this.selection());
  }

  range(from, to) {
    const [a, b] = from < to ? [from, to] : [to, from];
    for (let i = a; i <= b; i += 1) this.mark(this.tiles[i], true);
  }

  mark(tile, on) {
    if (on) this.selected.add(tile.id);
    else this.selected.delete(tile.id);
    tile.el.classList.toggle("selected", on);
    tile.el.querySelector(".pick").checked = on;
  }

  selectAllMatching() {
    this.allMatching = true;
    for (const tile of this.tiles) this.mark(tile, true);
    this.onSelect(this.selection());
  }

  clearSelection() {
    this.allMatching = false;
    for (const id of this.selected) {
      const tile = this.byId.get(id);
      if (tile) this.mark(tile, false);
    }
    this.selected.clear();
    this.anchor = null;
    this.onSelect(this.selection());
  }

  /** {ids} or {all: true}, plus how many images that is (null: the caller knows the count). */
  selection() {
    if (this.allMatching) return { all: true, ids: [], size: null };
    return { all: false, ids: [...this.selected], size: this.selected.size };
  }

  /** Reflect a tag edit on the tiles on screen (the server normalises names the same way). */
  editTags(ids, add, remove) {
    for (const id of ids) {
      const tile = this.byId.get(id);
      if (!tile) continue;
      tile.tags = [...new Set([...tile.tags, ...add])].filter((t) => !remove.includes(t)).sort();
      this.showTags(tile.el, tile.tags);
    }
  }

  drop(ids) {
    for (const id of ids) {
      const tile = this.byId.get(id);
      if (!tile) continue;
      tile.el.remove();
      this.byId.delete(id);
      this.selected.delete(id);
    }
    this.tiles = this.tiles.filter((t) => this.byId.has(t.id));
    this.tiles.forEach((t, i) => (t.index = i));
    this.anchor = null;
    this.onSelect(this.selection());
  }
}
