// The Train form on a dataset's page: model name, task and labels -> a training job, then the
// job's live view. A refusal (too few images, too few labels...) is shown in the form as the
// server's own sentence.

import { api } from "./api.js";

const form = document.getElementById("train-form");
const datasetName = document.getElementById("dataset")?.dataset.name ?? "";

/** A model name the server accepts (letters, digits, "-", "_", "."), made from a dataset name. */
export const modelName = (name) =>
  name
    .trim()
    .replace(/[^\p{L}\p{N}._-]+/gu, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 100) || "model";

function showError(message) {
  const box = document.getElementById("train-error");
  box.textContent = message;
  box.hidden = !message;
}

// Training a model again starts from the task and labels of its last version on this dataset:
// tags added since (a machine's capture tag, say) are not new classes unless ticked.
function startFromPrevious(model) {
  const previous = JSON.parse(document.getElementById("previous-trainings")?.textContent || "{}");
  const last = previous[model];
  const note = document.getElementById("train-previous");
  if (!last || !note) {
    if (note) note.hidden = true;
    return;
  }
  const boxes = [...form.querySelectorAll('input[name="labels"]')];
  for (const box of boxes) box.checked = last.labels.includes(box.value);
  const task = form.querySelector(`input[name="task"][value="${last.task}"]`);
  if (task) task.checked = true;
  const fresh = boxes.filter((b) => !b.checked).map((b) => b.value);
  note.textContent =
    `Ticked: the labels of ${model} v${last.version}.` +
    (fresh.length ? ` Not ticked: ${fresh.join(", ")} (tick to learn them too).` : "");
  note.hidden = false;
}

if (form) {
  const input = form.elements.model;
  input.value = modelName(input.value || datasetName);
  startFromPrevious(input.value);
  input.addEventListener("change", () => startFromPrevious(input.value.trim()));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    showError("");
    const data = new FormData(form);
    const labels = data.getAll("labels");
    const model = String(data.get("model") ?? "").trim();
    if (!model) return showError("Give the model a name.");
    if (labels.length < 2) return showError("Choose at least 2 labels: a classifier tells labels apart.");
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    button.textContent = "Starting…";
    try {
      const job = await api("/api/v1/jobs/train", {
        method: "POST",
        body: { dataset: datasetName, task: data.get("task"), model, labels },
      });
      location.href = `/jobs/${job.id}`;
    } catch (err) {
      showError(err.message);
      button.disabled = false;
      button.textContent = "Train";
    }
  });
  form.dataset.ready = "true";
}
