"""The agent's live-frame push on its own: nothing is sent while nobody watches, a frame is sent
once (annotated), and a server that cannot take frames is logged once per outage, not per frame.
The agent against the real server is in test_agent_connected."""

from __future__ import annotations

import io
import logging
import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from PIL import Image

from tagtrain.agent.frame_push import FramePush
from tagtrain.agent.live_frames import LiveFrames
from tagtrain.agent.model_slot import ModelSlot
from tagtrain.agent.services import Frame, Services
from tagtrain.errors import NotFound, Unavailable
from tagtrain.machine_config import VisionConfig
from tagtrain.runtime import Classification
from tests.running import eventually

START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class TickingCamera:
    """A camera whose frame is new each time ``tick()`` is called."""

    def __init__(self) -> None:
        self.ticks = 0
        self.rgb = np.full((120, 160, 3), 90, dtype=np.uint8)

    def tick(self) -> None:
        self.ticks += 1

    def names(self) -> list[str]:
        return ["door"]

    def latest(self, camera: str) -> Frame:
        if camera != "door":
            raise NotFound(camera)
        found = [Classification("glass", 0.9), Classification("metal", 0.1)]
        return Frame(self.rgb, START + timedelta(seconds=self.ticks), found, "trash@1")


class Server:
    def __init__(self) -> None:
        self.frames: list[tuple[str, bytes]] = []
        self.down = False
        self.lock = threading.Lock()

    def post(self, camera: str, jpeg: bytes) -> None:
        if self.down:
            raise Unavailable("cannot reach the server at http://x: refused; will retry")
        with self.lock:
            self.frames.append((camera, jpeg))


def test_sends_each_new_frame_once_and_only_while_watched() -> None:
    camera, server = TickingCamera(), Server()
    push = FramePush(LiveFrames(Services(ModelSlot(), camera, VisionConfig(n=1))), server.post)
    assert push.push_once() == 1  # push_once itself does not look at the flag: the thread does
    assert push.push_once() == 0  # the same frame is not sent twice
    camera.tick()
    assert push.push_once() == 1
    name, jpeg = server.frames[-1]
    assert name == "door"
    assert Image.open(io.BytesIO(jpeg)).size == (160, 120)
    corner = np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"))[:10, :10]
    assert corner.mean() < 40  # the labels' dark box: annotated like the local stream

    server.frames.clear()
    push.start()
    try:
        camera.tick()
        threading.Event().wait(0.3)
        assert server.frames == []  # nobody watches
        push.live = True
        assert eventually(lambda: server.frames, 5)
    finally:
        push.stop()


def test_an_outage_is_logged_once_and_its_end_once(caplog: pytest.LogCaptureFixture) -> None:
    camera, server = TickingCamera(), Server()
    push = FramePush(LiveFrames(Services(ModelSlot(), camera, VisionConfig())), server.post, fps=50)
    server.down = True
    caplog.set_level(logging.INFO, logger="tagtrain.agent")
    push.live = True
    push.start()
    try:
        for _ in range(20):  # many frames, each one failing
            camera.tick()
            threading.Event().wait(0.02)
        server.down = False
        camera.tick()
        assert eventually(lambda: server.frames, 10)
    finally:
        push.stop()
    warnings = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "cannot send live frames to the server" in warnings[0]
    assert sum("reach the server again" in r.message for r in caplog.records) == 1


def test_viewers_and_the_relay_share_one_encoding_per_frame() -> None:
    """Four viewers of the local stream and the relay to the server read each frame's annotated
    JPEG from one LiveFrames: it is encoded once per new frame, not once per reader."""
    camera, server = TickingCamera(), Server()
    live = LiveFrames(Services(ModelSlot(), camera, VisionConfig(n=1)))
    push = FramePush(live, server.post)
    results: list[bytes] = []

    def viewer() -> None:
        latest = live.latest("door")
        assert latest is not None
        results.append(latest[1])

    for _round in range(3):
        viewers = [threading.Thread(target=viewer) for _ in range(4)]
        for t in viewers:
            t.start()
        assert push.push_once() == 1
        for t in viewers:
            t.join()
        camera.tick()
    assert live.encoded == 3  # without sharing: 15
    assert len(results) == 12 and len(server.frames) == 3
    assert all(jpeg in results for _, jpeg in server.frames)
    assert live.latest("nowhere") is None  # a camera that is gone: nothing to show
