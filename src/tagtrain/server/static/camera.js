// The browser's camera: a live preview (getUserMedia), Snap for one photo, and a burst at a
// chosen rate. Each shot is a JPEG that goes through the same uploader as dropped files.

import { toast } from "./toast.js";

const JPEG_QUALITY = 0.92;

function explain(err) {
  if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
    return "The camera needs a secure page: open tagtrain at https:// or http://localhost. On a phone, use Take photo instead.";
  }
  if (err.name === "NotAllowedError") return "The browser was not allowed to use the camera: allow it for this site and try again.";
  if (err.name === "NotFoundError" || err.name === "OverconstrainedError") return "No camera was found on this device.";
  if (err.name === "NotReadableError") return "The camera is busy: another program is using it.";
  return `The camera could not start: ${err.message || err.name}.`;
}

export class Camera {
  constructor(dialog, uploader) {
    this.dialog = dialog;
    this.uploader = uploader;
    this.video = dialog.querySelector("video");
    this.status = dialog.querySelector("#camera-status");
    this.shots = 0;
    this.facing = "environment";
    dialog.querySelector("#snap").addEventListener("click", () => this.snap());
    this.burstButton = dialog.querySelector("#burst");
    this.burstButton.addEventListener("click", () => (this.timer ? this.stopBurst() : this.startBurst()));
    dialog.querySelector("#switch-camera").addEventListener("click", () => this.switch());
    dialog.addEventListener("close", () => this.stop());
  }

  async open() {
    this.dialog.showModal();
    await this.start();
  }

  async start() {
    this.status.textContent = "Starting the camera…";
    try {
      if (!navigator.mediaDevices?.getUserMedia) throw new Error("no camera API");
      this.stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: this.facing, width: { ideal: 1280 }, height: { ideal: 960 } },
        audio: false,
      });
      this.video.srcObject = this.stream;
      await this.video.play();
      const { videoWidth: w, videoHeight: h } = this.video;
      this.status.textContent = `Camera on (${w}×${h}). Snap a photo or start a burst.`;
    } catch (err) {
      this.status.textContent = explain(err);
      toast(explain(err), "error");
    }
  }

  stop() {
    this.stopBurst();
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
    this.video.srcObject = null;
  }

  async switch() {
    this.facing = this.facing === "environment" ? "user" : "environment";
    this.stop();
    await this.start();
  }

  /** Take one frame and send it; resolves when it is queued. */
  async snap() {
    const { videoWidth: w, videoHeight: h } = this.video;
    if (!this.stream || !w) {
      toast("The camera is not on yet.", "error");
      return;
    }
    const canvas = document.createElement("canvas");
    canvas.width = w;
    canvas.height = h;
    canvas.getContext("2d").drawImage(this.video, 0, 0, w, h);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", JPEG_QUALITY));
    if (!blob) {
      toast("The camera frame could not be encoded as JPEG.", "error");
      return;
    }
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    const name = `camera-${stamp}.jpg`;
    this.shots += 1;
    this.dialog.querySelector("#shot-count").textContent = String(this.shots);
    this.uploader.add([{ file: new File([blob], name, { type: "image/jpeg" }), path: name }]);
  }

  startBurst() {
    const rate = Number(this.dialog.querySelector("#burst-rate").value);
    let left = Number(this.dialog.querySelector("#burst-count").value);
    this.burstButton.textContent = "Stop burst";
    this.timer = setInterval(() => {
      left -= 1;
      this.snap();
      if (left <= 0) this.stopBurst();
    }, 1000 / rate);
  }

  stopBurst() {
    clearInterval(this.timer);
    this.timer = null;
    this.burstButton.textContent = "Start burst";
  }
}
