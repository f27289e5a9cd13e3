// A model version's report page: the training curves (inline SVG) and the try-it box. The tables,
// the confusion matrix and the wrong test images are rendered by the server.

import { COLORS, lineChart } from "./chart.js";
import { setupTryIt } from "./tryit.js";

const $ = (id) => document.getElementById(id);

/** Curves rows [{phase, epoch, train_loss, val_loss, val_metric}] as chart series; epochs are
 * counted on across phases (a fine-tune continues after the head), each phase marked. */
export function curveSeries(rows) {
  const marks = [];
  const loss = { train: [], val: [] };
  const metric = [];
  rows.forEach((r, i) => {
    const x = i + 1;
    if (i === 0 || r.phase !== rows[i - 1].phase) marks.push({ x, label: r.phase });
    if (r.train_loss != null) loss.train.push([x, r.train_loss]);
    if (r.val_loss != null) loss.val.push([x, r.val_loss]);
    if (r.val_metric != null) metric.push([x, r.val_metric]);
  });
  return { marks: marks.length > 1 ? marks : [], loss, metric };
}

const data = $("curves-data");
if (data) {
  const { marks, loss, metric } = curveSeries(JSON.parse(data.textContent));
  lineChart(
    $("curve-loss"),
    [
      { name: "training", color: COLORS.train, points: loss.train },
      { name: "validation", color: COLORS.val, points: loss.val, dashed: true },
    ],
    { xLabel: "epoch", marks },
  );
  lineChart($("curve-metric"), [{ name: "validation", color: COLORS.metric, points: metric }], {
    yMin: 0,
    yMax: 1,
    percent: true,
    xLabel: "epoch",
    marks,
  });
}

const box = $("tryit");
if (box) setupTryIt(box);

document.body.dataset.ready = "true";
