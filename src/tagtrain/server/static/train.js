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

if (form) {
  const input = form.elements.model;
  input.value = modelName(input.value || datasetName);
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
