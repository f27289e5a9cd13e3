// The Deploy dialog of a model version's page: choose a machine, pinned to this version or
// following the model's newest version.

import { api } from "./api.js";
import { showError, toast } from "./toast.js";

const $ = (id) => document.getElementById(id);
const page = $("version");
const dialog = $("deploy-dialog");
const model = page.dataset.name;
const version = Number(page.dataset.version);

async function open() {
  const machines = await api("/api/v1/machines");
  $("deploy-machine").replaceChildren(
    ...machines.map((m) => {
      const now = m.deployment ? ` (now ${m.deployment.model} v${m.deployment.version})` : "";
      return Object.assign(document.createElement("option"), { value: String(m.id), textContent: m.name + now });
    }),
  );
  $("deploy-no-machines").hidden = machines.length > 0;
  $("deploy-submit").disabled = machines.length === 0;
  dialog.showModal();
}

$("deploy-open").addEventListener("click", () => open().catch(showError));
$("deploy-cancel").addEventListener("click", () => dialog.close());
$("deploy-to").addEventListener("submit", async (e) => {
  e.preventDefault();
  const id = $("deploy-machine").value;
  const follow = new FormData(e.target).get("follow") === "latest";
  try {
    const m = await api(`/api/v1/machines/${id}/deployment`, {
      method: "PUT",
      body: { model, version: follow ? null : version },
    });
    dialog.close();
    const how = m.deployment.pinned ? "pinned" : "following the newest version";
    toast(`Deployed ${m.deployment.model} v${m.deployment.version} to ${m.name} (${how}).`, "ok", {
      link: { href: `/machines/${m.id}`, text: "Open the machine" },
    });
  } catch (err) {
    showError(err, "Not deployed");
  }
});
