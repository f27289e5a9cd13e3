"""What runs on a machine in both modes (connected and stand-alone): the model slot, the camera
loops, the services, the local HTTP server and, optionally, Viam's gRPC API. A new config swaps
the camera loops only when the cameras changed, and the vision settings in place."""

from __future__ import annotations

import logging
import threading
from typing import Any

from tagtrain.agent.camera_loop import CameraHub, CameraLoop, OnCapture
from tagtrain.agent.http_api import create_agent_app
from tagtrain.agent.live_frames import LiveFrames
from tagtrain.agent.local_server import LocalServer
from tagtrain.agent.model_slot import ModelSlot
from tagtrain.agent.services import Services
from tagtrain.machine_config import AgentStatus, MachineConfig, QueueStatus, split_address

log = logging.getLogger("tagtrain.agent")

AGENT_VERSION = "1"


class Machine:
    def __init__(
        self,
        slot: ModelSlot,
        *,
        listen: str,
        viam_grpc: str | None = None,
        on_capture: OnCapture | None = None,
    ) -> None:
        self.slot = slot
        self.hub = CameraHub([])
        self.config = MachineConfig()
        self.services = Services(slot, self.hub, self.config.vision)
        self._on_capture = on_capture
        self._closing = threading.Event()  # ends the live streams, which would hold up stop()
        self.live = LiveFrames(self.services)  # the local stream's and the relay's frames
        app = create_agent_app(self.services, self.status, closing=self._closing, live=self.live)
        self.http = LocalServer(app, listen)
        self._viam_address = viam_grpc
        self.viam: Any = None
        self.queue_status = QueueStatus()
        self.stream_url: str | None = None  # where people reach the local services, if not http.url
        self.errors: list[str] = []

    def start(self) -> None:
        self.http.start()
        log.info("local services on %s", self.http.url)
        if self._viam_address:
            from tagtrain.agent.viam_grpc import ViamGrpcServer  # noqa: PLC0415 - optional extra

            host, port = split_address(self._viam_address)
            self.viam = ViamGrpcServer(self.services, host, port)
            self.viam.start()
            log.info("Viam gRPC services on %s:%s", host, self.viam.port)

    def stop(self) -> None:
        self.hub.stop()
        if self.viam is not None:
            self.viam.stop()
        self._closing.set()
        self.http.stop()

    def configure(self, config: MachineConfig) -> None:
        """Run ``config``: new camera loops if the cameras changed, new vision settings always."""
        self.services.vision = config.vision
        if config.cameras != self.config.cameras:
            old = self.hub
            self.hub = CameraHub(
                [CameraLoop(camera, self.slot, self._on_capture) for camera in config.cameras]
            )
            self.services.frames = self.hub
            old.stop()
            self.hub.start()
            log.info("cameras: %s", ", ".join(self.hub.names()) or "none")
        self.config = config

    def status(self) -> AgentStatus:
        return AgentStatus(
            model=self.slot.ref,
            cameras=self.hub.statuses(),
            recent=self.hub.recent(),
            queue=self.queue_status,
            stream_url=self.stream_url or self.http.url,
            errors=self.errors[-20:],
            agent_version=AGENT_VERSION,
        )
