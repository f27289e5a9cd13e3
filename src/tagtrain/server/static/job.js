// The live view of a training job: the job's Server-Sent Events drive the phase list, the progress
// bar, the ETA and the loss / validation curves; the final `end` event says how it ended.

import { api } from "./api.js";
import { COLORS, lineChart } from "./chart.js";
import { showError, toast } from "./toast.js";

const $ = (id) => document.getElementById(id);
const page = $("job");
const jobId = page.dataset.id;
const FINISHED = ["completed", "failed", "canceled"];
const PHASES = {
  queued: "Waiting for the worker",
  prepare: "Preparing the images",
  features: "Computing image features",
  head: "Training the classifier head",
  finetune: "Fine-tuning the network",
  evaluate: "Scoring images the models did not train on",
  export: "Writing the model package",
};
const phaseName = (p) => PHASES[p] ?? (p ? p.charAt(0).toUpperCase() + p.slice(1).replaceAll("_", " ") : "Working");

export function duration(s) {
  if (s == null || !Number.isFinite(s)) return "";
  const t = Math.max(0, Math.round(s));
  return t < 60 ? `${t} s` : `${Math.floor(t / 60)} min ${String(t % 60).padStart(2, "0")} s`;
}

const seen = { lastId: 0, phases: [], loss: [], metric: [], marks: [], elapsed: 0 };

function setState(state) {
  const badge = $("job-state");
  badge.textContent = state;
  badge.className = `state state-${state}`;
  page.dataset.state = state;
  $("cancel-job").hidden = FINISHED.includes(state);
}

function showPhase(phase, elapsed) {
  if (seen.phases.at(-1) === phase) return;
  seen.phases.push(phase);
  if (elapsed != null) seen.marks.push({ x: elapsed, label: phase });
  const list = $("job-phases");
  for (const li of list.children) li.className = "done";
  const li = document.createElement("li");
  li.className = "current";
  li.dataset.phase = phase;
  li.textContent = phaseName(phase);
  list.append(li);
}

function setBar(fraction) {
  const bar = $("job-progress");
  bar.classList.toggle("indeterminate", fraction == null);
  const pct = fraction == null ? 0 : Math.round(100 * Math.min(1, Math.max(0, fraction)));
  $("job-progress-fill").style.width = fraction == null ? "" : `${pct}%`;
  if (fraction == null) bar.removeAttribute("aria-valuenow");
  else bar.setAttribute("aria-valuenow", String(pct));
}

function drawCurves() {
  const time = { xMin: 0, xMax: seen.elapsed, xLabel: "seconds", marks: seen.marks };
  const empty = "Curves start when the classifier trains";
  lineChart($("live-loss"), [{ name: "training loss", color: COLORS.train, points: seen.loss }], {
    ...time,
    empty,
  });
  lineChart($("live-metric"), [{ name: "validation", color: COLORS.metric, points: seen.metric }], {
    ...time,
    empty,
    yMin: 0,
    yMax: 1,
    percent: true,
  });
}

function onProgress(e) {
  const id = Number(e.lastEventId);
  if (id && id <= seen.lastId) return; // a reconnect replays the stream from the start
  seen.lastId = id || seen.lastId;
  const ev = JSON.parse(e.data);
  if (page.dataset.state === "queued") setState("running");
  showPhase(ev.phase, ev.elapsed_s);
  $("job-phase").textContent = phaseName(ev.phase);
  $("job-message").textContent = ev.message ? `— ${ev.message}` : "";
  setBar(ev.total ? ev.step / ev.total : null);
  $("job-step").textContent = ev.total ? `Step ${ev.step} of ${ev.total}.` : "";
  $("job-eta").textContent = ev.eta_s != null ? `About ${duration(ev.eta_s)} left.` : "";
  $("job-elapsed").textContent = ev.elapsed_s != null ? `${duration(ev.elapsed_s)} so far.` : "";
  const x = ev.elapsed_s ?? seen.loss.length;
  seen.elapsed = Math.max(seen.elapsed, x);
  if (ev.loss != null) seen.loss.push([x, ev.loss]);
  if (ev.metric != null) seen.metric.push([x, ev.metric]);
  drawCurves();
}

function showWarnings(warnings) {
  const list = $("job-warnings");
  list.replaceChildren(
    ...warnings.map((w) => {
      const li = document.createElement("li");
      li.setAttribute("role", "note");
      li.textContent = w;
      return li;
    }),
  );
  list.hidden = !warnings.length;
}

function onEnd(job) {
  setState(job.state);
  showWarnings(job.warnings ?? []);
  const result = $("job-result");
  const p = document.createElement("p");
  if (job.state === "completed") {
    $("job-progress-fill").style.transition = "none"; // a replayed stream ends at once, full
    setBar(1);
    for (const li of $("job-phases").children) li.className = "done";
    $("job-phase").textContent = "Done";
    p.className = "ok";
    p.append("Done. ");
    const a = document.createElement("a");
    a.href = `/jobs/${jobId}/report`;
    a.id = "report-link";
    a.textContent = "Open the report";
    p.append(a, " — test figures, the confusion matrix and the images it got wrong.");
  } else {
    p.className = "error";
    p.setAttribute("role", "alert");
    p.textContent = `Training ${job.state}: ${job.error || "no reason was recorded"}`;
    $("job-phase").textContent = job.state === "canceled" ? "Canceled" : "Failed";
  }
  result.replaceChildren(p);
  for (const id of ["job-message", "job-step", "job-eta"]) $(id).textContent = "";
  const took = job.started_at && job.finished_at ? (Date.parse(job.finished_at) - Date.parse(job.started_at)) / 1000 : null;
  $("job-elapsed").textContent = took != null ? `It ran for ${duration(took)}.` : "";
}

function follow() {
  const source = new EventSource(`/api/v1/jobs/${jobId}/events`);
  source.onmessage = onProgress;
  source.addEventListener("end", (e) => {
    source.close();
    onEnd(JSON.parse(e.data));
  });
  source.onerror = async () => {
    if (source.readyState !== EventSource.CLOSED) {
      $("job-message").textContent = "— connection lost, reconnecting…";
      return;
    }
    try {
      const job = await api(`/api/v1/jobs/${jobId}`); // a readable reason (e.g. logged out)
      if (FINISHED.includes(job.state)) onEnd(job);
      else setTimeout(follow, 2000);
    } catch (err) {
      showError(err, "Live progress stopped");
    }
  };
}

$("cancel-job").addEventListener("click", async (e) => {
  const button = e.currentTarget;
  button.disabled = true;
  try {
    const job = await api(`/api/v1/jobs/${jobId}/cancel`, { method: "POST" });
    if (FINISHED.includes(job.state)) onEnd(job);
    else toast("Canceling: the job stops at its next check.", "info");
    button.textContent = "Canceling…";
  } catch (err) {
    button.disabled = false;
    showError(err);
  }
});

setBar(null);
drawCurves();
follow();
document.body.dataset.ready = "true";
