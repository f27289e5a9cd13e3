"""The agent on a machine: camera frames classified per second, GetClassifications over HTTP, and
how fast queued captures sync once the server is back.

- **fps**: a 640x480 Motion-JPEG video file as the camera, unthrottled (``max_fps`` 1000), the
  same EfficientNet-Lite0 package as the inference benchmark (fp32), for ``FPS_S`` seconds; the
  agent's CPU use is its process CPU time over the wall time (100% = one core). Peer: the runtime
  alone classifying the same, already decoded frames in a tight loop, so the ratio is what
  reading the camera and the loop cost.
- **GetClassifications over HTTP**: a 640x480 JPEG posted to the agent's local services by 1
  client, then by 16 at once; p50 and p99. Peer: ``classify_bytes`` in process.
- **sync after an outage**: ``SYNC_N`` captures queued while the server is down, then the time
  for the queue to drain into a real server (uvicorn on loopback) once it is up. No bar in DESIGN.
"""

from __future__ import annotations

import io
import resource
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import httpx
import numpy as np
from PIL import Image

from bench.common import latency, temp_dir, trashnet_by_class
from bench.inference import FRAME, build_package, camera_frame
from bench.rows import Bar, Row
from tagtrain.agent.capture_queue import CaptureMeta, CaptureQueue
from tagtrain.agent.machine import Machine
from tagtrain.agent.model_slot import ModelSlot
from tagtrain.agent.server_link import ServerLink
from tagtrain.agent.sync import CaptureSync
from tagtrain.machine_config import MachineConfig
from tagtrain.runtime import Classifier

FPS_BAR = 25.0
FPS_S = 10.0
HTTP_CALLS = 200
CONCURRENT = 16
SYNC_N = 200


def run() -> list[Row]:
    with temp_dir("agent") as tmp:
        build_package(tmp / "package")
        classifier = Classifier.load(tmp / "package")
        video = write_video(tmp / "camera.avi")
        rows = camera_rows(classifier, video)
        rows += http_rows(classifier)
        rows += sync_rows(tmp)
    return rows


def write_video(path: Path, n: int = 30) -> Path:
    """``n`` trashnet photos as a 640x480 MJPG clip, 30 frames a second."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, FRAME)
    photos = [p for paths in trashnet_by_class().values() for p in paths[: n // 6 + 1]][:n]
    for photo in photos:
        with Image.open(photo) as img:
            writer.write(np.asarray(img.convert("RGB").resize(FRAME))[:, :, ::-1].copy())
    writer.release()
    return path


def camera_rows(classifier: Classifier, video: Path) -> list[Row]:
    machine = Machine(ModelSlot(classifier), listen="127.0.0.1:0")
    config = {"cameras": [{"name": "cam", "source": str(video), "max_fps": 1000}]}
    machine.configure(MachineConfig.model_validate(config))
    loop = machine.hub.loop("cam")
    time.sleep(1.0)  # opening the file and the first frames are not steady state
    frames0, cpu0, wall0 = loop.frames, _cpu_s(), time.perf_counter()
    time.sleep(FPS_S)
    frames, cpu, wall = loop.frames - frames0, _cpu_s() - cpu0, time.perf_counter() - wall0
    machine.stop()
    fps = frames / wall
    peer = runtime_fps(classifier, video)
    details = {
        "frames": frames,
        "seconds": round(wall, 2),
        "cpu_percent_of_one_core": round(100 * cpu / wall),
    }
    return [
        Row(
            "agent: video-camera frames classified per second (640x480, fp32)",
            round(fps, 1),
            "fps",
            Bar(">=", FPS_BAR),
            round(peer, 1),
            "the runtime alone on the same decoded frames",
            details,
        ),
        Row(
            "agent: CPU use while classifying (100% = one core)",
            round(100 * cpu / wall),
            "%",
            details=details,
        ),
    ]


def runtime_fps(classifier: Classifier, video: Path) -> float:
    capture = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < 30:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(np.ascontiguousarray(bgr[:, :, ::-1]))
    capture.release()
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < FPS_S / 2:
        classifier.classify_array(frames[n % len(frames)], 3)
        n += 1
    return n / (time.perf_counter() - start)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def http_rows(classifier: Classifier) -> list[Row]:
    jpeg = camera_frame()
    machine = Machine(ModelSlot(classifier), listen="127.0.0.1:0")
    machine.start()
    url = f"{machine.http.url}/api/v1/vision/classifier/classifications?n=3"
    try:
        runs = {clients: _posts(url, jpeg, clients=clients) for clients in (1, CONCURRENT)}
    finally:
        machine.stop()
    local = latency([_timed(lambda: classifier.classify_bytes(jpeg, 3)) for _ in range(100)])
    rows = []
    for clients, (samples, wall) in runs.items():
        ms = sorted(s * 1000 for s in samples)
        p99 = statistics.quantiles(ms, n=100, method="inclusive")[98]
        label = f"agent: GetClassifications over HTTP, {clients} client{'s' if clients > 1 else ''}"
        details = {"calls": len(ms), "p99_ms": round(p99, 2), "requests_per_s": len(ms) / wall}
        peer = "classify_bytes in process, p50"
        p50 = round(statistics.median(ms), 2)
        rows.append(Row(f"{label}, p50", p50, "ms", None, round(local.p50_ms, 2), peer, details))
        rows.append(Row(f"{label}, p99", round(p99, 2), "ms", details=details))
    samples, wall = runs[CONCURRENT]
    rows.append(
        Row(
            f"agent: GetClassifications over HTTP, {CONCURRENT} clients, throughput",
            round(len(samples) / wall, 1),
            "req/s",
            None,
            round(1000 / local.p50_ms, 1),
            "1 / in-process p50 (one call at a time)",
        )
    )
    return rows


def _posts(url: str, jpeg: bytes, *, clients: int) -> tuple[list[float], float]:
    """Seconds per request of every request, and the wall time of them all."""
    per_client = max(HTTP_CALLS // clients, 10)
    ready = threading.Barrier(clients + 1)

    def client_run() -> list[float]:
        with httpx.Client(timeout=60) as http:
            http.post(url, content=jpeg).raise_for_status()  # connect and warm up
            ready.wait()
            return [
                _timed(lambda: http.post(url, content=jpeg).raise_for_status())
                for _ in range(per_client)
            ]

    with ThreadPoolExecutor(clients) as pool:
        parts = [pool.submit(client_run) for _ in range(clients)]
        ready.wait()
        start = time.perf_counter()
        samples = [s for part in parts for s in part.result()]
    return samples, time.perf_counter() - start


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def sync_rows(tmp: Path) -> list[Row]:
    # The tests' live server: the real app under uvicorn on a loopback port, an admin key.
    from tests.agent_live import admin_token, free_port, live_server, register_machine  # noqa: PLC0415

    data, port = tmp / "server", free_port()
    token = admin_token(data)
    queue = CaptureQueue(tmp / "queue", budget_bytes=2**30)
    for jpeg in _distinct_jpegs(SYNC_N):
        queue.put(jpeg, CaptureMeta.new("cam", ("bench",)))
    with live_server(data, port) as url:
        _machine_id, key = register_machine(url, token)
        link = ServerLink(url, key)
        sync = CaptureSync(queue, link, batch=32)
        start = time.perf_counter()
        sent = sync.drain_once()
        seconds = time.perf_counter() - start
        link.close()
    queue.close()
    return [
        Row(
            f"agent: sync after an outage ({SYNC_N} queued 640x480 captures)",
            round(sent / seconds, 1),
            "images/s",
            details={"sent": sent, "seconds": round(seconds, 2)},
        )
    ]


def _distinct_jpegs(n: int) -> list[bytes]:
    """``n`` different 640x480 JPEGs (the server stores identical bytes once)."""
    photos = [p for paths in trashnet_by_class().values() for p in paths]
    out = []
    for i in range(n):
        with Image.open(photos[i % len(photos)]) as img:
            frame = img.convert("RGB").resize(FRAME)
        frame.putpixel((0, 0), (i % 256, i // 256, 7))
        buf = io.BytesIO()
        frame.save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out
