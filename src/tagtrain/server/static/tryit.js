// The try-it box: a photo (chosen, dropped, or snapped with the browser's camera) goes to the
// vision service of this model version; the answer is a ranked list with confidence bars.

import { ApiError, csrfToken, errorFrom } from "./api.js";
import { showError } from "./toast.js";

const TOP_N = 5;
const JPEG_QUALITY = 0.92;

function cameraProblem(err) {
  if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
    return "The camera needs a secure page: open tagtrain at https:// or http://localhost, or choose a photo instead.";
  }
  if (err.name === "NotAllowedError") return "The browser was not allowed to use the camera: allow it for this site and try again.";
  if (err.name === "NotFoundError" || err.name === "OverconstrainedError") return "No camera was found on this device.";
  if (err.name === "NotReadableError") return "The camera is busy: another program is using it.";
  return `The camera could not start: ${err.message || err.name}.`;
}

/** POST the image bytes to the vision service; resolves to [{class_name, confidence}]. */
export async function classify(ref, blob) {
  const url = `/api/v1/vision/${encodeURIComponent(ref)}/classifications?n=${TOP_N}`;
  let res;
  try {
    res = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/octet-stream", Accept: "application/json", "X-CSRF-Token": csrfToken },
      body: blob,
    });
  } catch {
    throw new ApiError("The server cannot be reached. Check that tagtrain is still running, then try again.");
  }
  if (!res.ok) throw await errorFrom(res);
  return (await res.json()).classifications;
}

function renderResults(list, found) {
  list.replaceChildren(
    ...found.map((c) => {
      const li = document.createElement("li");
      const name = document.createElement("span");
      name.className = "ranked-name";
      name.textContent = c.class_name;
      const track = document.createElement("span");
      track.className = "bar-track";
      const fill = document.createElement("span");
      fill.className = "bar-fill";
      fill.style.width = `${(100 * c.confidence).toFixed(1)}%`;
      track.append(fill);
      const value = document.createElement("span");
      value.className = "bar-num";
      value.textContent = `${(100 * c.confidence).toFixed(1)}%`;
      li.append(name, track, value);
      return li;
    }),
  );
}

export function setupTryIt(box) {
  const $ = (id) => box.querySelector(`#${id}`);
  const ref = box.dataset.ref;
  const status = $("tryit-status");
  const results = $("tryit-results");
  const preview = $("tryit-preview");
  const video = $("tryit-video");
  let stream = null;

  async function run(blob, what) {
    if (preview.src.startsWith("blob:")) URL.revokeObjectURL(preview.src);
    preview.src = URL.createObjectURL(blob);
    preview.hidden = false;
    status.textContent = `Classifying ${what}…`;
    results.replaceChildren();
    box.dataset.state = "busy";
    try {
      const found = await classify(ref, blob);
      renderResults(results, found);
      status.textContent = found.length
        ? `${what}: ${found[0].class_name} is the best match.`
        : `${what}: no label reaches its threshold.`;
      box.dataset.state = "done";
    } catch (err) {
      status.textContent = err.message;
      box.dataset.state = "failed";
      showError(err, "Try it");
    }
  }

  $("tryit-file").addEventListener("change", (e) => {
    const file = e.target.files?.[0];
    if (file) run(file, file.name);
    e.target.value = "";
  });

  const drop = $("tryit-drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const file = [...(e.dataTransfer?.files ?? [])].find((f) => f.type.startsWith("image/"));
    if (file) run(file, file.name);
    else showError(new Error("Drop an image file (JPEG or PNG)."));
  });

  function stopCamera() {
    for (const track of stream?.getTracks() ?? []) track.stop();
    stream = null;
    video.srcObject = null;
    $("tryit-live").hidden = true;
  }

  $("tryit-camera").addEventListener("click", async () => {
    try {
      if (!navigator.mediaDevices?.getUserMedia) throw new Error("no camera API");
      stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: "environment", width: { ideal: 1280 } },
        audio: false,
      });
      video.srcObject = stream;
      $("tryit-live").hidden = false;
      await video.play();
    } catch (err) {
      stopCamera();
      status.textContent = cameraProblem(err);
      showError(new Error(cameraProblem(err)));
    }
  });

  $("tryit-snap").addEventListener("click", () => {
    if (!video.videoWidth) return;
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    canvas.toBlob((blob) => blob && run(blob, "The snapshot"), "image/jpeg", JPEG_QUALITY);
  });
  $("tryit-stop").addEventListener("click", stopCamera);
  window.addEventListener("pagehide", stopCamera);
}
