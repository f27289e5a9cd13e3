// The Datasets pages: create a dataset (list page); rename, describe and delete one (dataset page).

import { api } from "./api.js";
import { confirmDialog, showError, toast } from "./toast.js";

const $ = (id) => document.getElementById(id);
const datasetUrl = (name) => `/datasets/${encodeURIComponent(name)}`;

/** Submit handler that disables the form's button while `fn` runs and shows any error. */
const handle = (form, fn) =>
  form?.addEventListener("submit", async (e) => {
    e.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await fn(new FormData(form));
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
    }
  });

handle($("create-dataset"), async (data) => {
  const body = { name: data.get("name").trim(), description: data.get("description").trim() };
  const ds = await api("/api/v1/datasets", { method: "POST", body });
  location.href = datasetUrl(ds.name);
});

const page = $("dataset");
const current = page?.dataset.name;

handle($("rename-dataset"), async (data) => {
  const body = { name: data.get("name").trim(), description: data.get("description").trim() };
  const ds = await api(`/api/v1/datasets/${encodeURIComponent(current)}`, { method: "PATCH", body });
  if (ds.name !== current) location.href = datasetUrl(ds.name);
  else toast("Saved.", "ok");
});

$("delete-dataset")?.addEventListener("click", async () => {
  const sure = await confirmDialog(`Delete the dataset “${current}”? Its images and their tags stay.`, {
    confirm: "Delete dataset",
  });
  if (!sure) return;
  try {
    await api(`/api/v1/datasets/${encodeURIComponent(current)}`, { method: "DELETE" });
    location.href = "/datasets";
  } catch (err) {
    showError(err);
  }
});

document.body.dataset.ready = "true";
