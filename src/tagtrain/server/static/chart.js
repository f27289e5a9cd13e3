// A small line chart drawn as inline SVG: a few series of (x, y) points, axes with round ticks,
// a legend, and optional vertical marks (phase changes). No library; redraw by calling it again.

const NS = "http://www.w3.org/2000/svg";
const W = 420;
const H = 210;
const PAD = { left: 46, right: 12, top: 28, bottom: 34 };

function el(name, attrs = {}, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** About `count` round tick values covering [lo, hi]. */
export function ticks(lo, hi, count = 4) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toFixed(10));
  return out;
}

const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : +v.toPrecision(3)).toString();

/**
 * Draw into `svg`. series: [{name, color, points: [[x, y], ...], dashed?}]; options: xMin / xMax
 * and yMin / yMax fix a range (else it fits the data), xLabel, percent (y as %), marks: [{x, label}]
 * (vertical lines), empty (the text shown before any point).
 */
export function lineChart(svg, series, opts = {}) {
  const { xMin, xMax, yMin, yMax, xLabel = "", percent = false, marks = [], empty = "No points yet" } = opts;
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (!all.length) {
    svg.append(el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "chart-empty" }, empty));
    return;
  }
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  let [x0, x1] = [xMin ?? Math.min(...xs), Math.max(xMax ?? -Infinity, ...xs)];
  if (x1 === x0) x1 = x0 + 1;
  let y0 = yMin ?? Math.min(0, ...ys);
  let y1 = yMax ?? Math.max(...ys);
  if (y1 === y0) y1 = y0 + 1;
  if (yMax === undefined) y1 += (y1 - y0) * 0.05;
  const sx = (x) => PAD.left + ((x - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const sy = (y) => H - PAD.bottom - ((y - y0) / (y1 - y0)) * (H - PAD.top - PAD.bottom);

  const grid = el("g", { class: "chart-grid" });
  for (const t of ticks(y0, y1)) {
    grid.append(el("line", { x1: PAD.left, x2: W - PAD.right, y1: sy(t), y2: sy(t) }));
    const label = percent ? `${Math.round(t * 100)}%` : fmt(t);
    grid.append(el("text", { x: PAD.left - 6, y: sy(t) + 4, "text-anchor": "end" }, label));
  }
  for (const t of ticks(x0, x1, 5)) {
    grid.append(el("text", { x: sx(t), y: H - PAD.bottom + 16, "text-anchor": "middle" }, fmt(t)));
  }
  if (xLabel) grid.append(el("text", { x: W - PAD.right, y: H - 4, "text-anchor": "end" }, xLabel));
  grid.append(el("line", { class: "axis", x1: PAD.left, x2: W - PAD.right, y1: H - PAD.bottom, y2: H - PAD.bottom }));
  svg.append(grid);

  let nextStart = Infinity;
  for (const m of [...marks].reverse()) { // right to left: of labels that would overlap, keep the later
    const g = el("g", { class: "chart-mark" });
    const x = sx(m.x);
    g.append(el("line", { x1: x, x2: x, y1: PAD.top, y2: H - PAD.bottom }));
    const width = 8 + 6 * m.label.length;
    const left = x + width > W - PAD.right; // near the right edge: the label goes left
    const [start, end] = left ? [x - width, x] : [x, x + width];
    if (end < nextStart) {
      const attrs = { x: x + (left ? -3 : 3), y: H - PAD.bottom - 5 };
      if (left) attrs["text-anchor"] = "end";
      g.append(el("text", attrs, m.label));
      nextStart = start;
    }
    svg.append(g);
  }

  let legendX = PAD.left;
  series.forEach((s) => {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (!pts.length) return;
    const d = pts.map(([x, y], j) => `${j ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join("");
    const attrs = { d, fill: "none", stroke: s.color, "stroke-width": 2, class: "chart-line" };
    if (s.dashed) attrs["stroke-dasharray"] = "5 4";
    svg.append(el("path", attrs));
    const [lx, ly] = pts[pts.length - 1];
    svg.append(el("circle", { cx: sx(lx), cy: sy(ly), r: 3, fill: s.color }));
    const legend = el("g", { class: "chart-legend" }); // in the band above the plot
    legend.append(el("line", { x1: legendX, x2: legendX + 16, y1: 12, y2: 12, stroke: s.color, "stroke-width": 3 }));
    legend.append(el("text", { x: legendX + 22, y: 16 }, s.name));
    svg.append(legend);
    legendX += 40 + 6.5 * s.name.length;
  });
}

export const COLORS = { train: "#2f6fed", val: "#f79009", metric: "#067647" };
