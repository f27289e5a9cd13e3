"""``tagtrain agent --server URL --machine-key KEY``: a machine the server manages.

Every ``poll_s`` seconds it pulls its config and deployment (running what changed) and reports its
status; captures go to the durable queue and sync in the background, and while someone watches the
machine through the server, live frames go there too (``frame_push``). The server being away changes
nothing on the machine: it keeps serving the last good model with the last config it had (both
kept on disk, so a restart while the server is away works too), queues captures within the disk
budget, and logs one sentence when the server goes away and one when it is back.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from tagtrain.agent.capture_queue import CaptureMeta, CaptureQueue
from tagtrain.agent.deployer import Deployer
from tagtrain.agent.frame_push import FramePush
from tagtrain.agent.local_server import LocalServer
from tagtrain.agent.machine import Machine
from tagtrain.agent.model_slot import ModelSlot
from tagtrain.agent.server_link import RemoteConfig, ServerLink
from tagtrain.agent.sync import CaptureSync
from tagtrain.errors import BadInput, TagtrainError
from tagtrain.files import write_atomic
from tagtrain.machine_config import MachineConfig, parse_machine_config

log = logging.getLogger("tagtrain.agent")

CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class ConnectedOptions:
    server: str
    machine_key: str
    state: Path
    listen: str = "127.0.0.1:8081"
    viam_grpc: str | None = None
    poll_s: float = 5.0
    queue_budget_mb: int = 1024


class ConnectedAgent:
    def __init__(self, options: ConnectedOptions) -> None:
        if not options.machine_key.startswith("tm_"):
            raise BadInput(
                "that is not a machine key (they start with tm_); copy it from the machine's "
                "page on the server, or make a new one there"
            )
        self.options = options
        options.state.mkdir(parents=True, exist_ok=True)
        self.link = ServerLink(options.server, options.machine_key)
        self.queue = CaptureQueue(
            options.state / "captures", budget_bytes=options.queue_budget_mb * 2**20
        )
        self.slot = ModelSlot()
        self.deployer = Deployer(self.slot, options.state / "packages", self.link.download_package)
        self.machine = Machine(
            self.slot, listen=options.listen, viam_grpc=options.viam_grpc, on_capture=self._capture
        )
        self.machine.stream_url = advertised_url(options.server, self.machine.http)
        self.sync = CaptureSync(self.queue, self.link)
        self.push = FramePush(self.machine.live, self.link.post_frame)
        self._stop = threading.Event()
        self._problem: str | None = None

    def run(self, stop: threading.Event | None = None) -> None:
        """Serve until ``stop`` is set (or :meth:`stop` is called)."""
        self._stop = stop or self._stop
        self.deployer.restore()
        cached = self._cached_config()
        if cached is not None:
            self.machine.configure(cached)
        self.machine.start()
        self.sync.start()
        self.push.start()
        try:
            while not self._stop.is_set():
                self.poll_once()
                self._stop.wait(self.options.poll_s)
        finally:
            self.close()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Stop every thread and let go of the queue (another agent may then take it)."""
        self.push.stop()
        self.sync.stop()
        self.machine.stop()
        self.queue.close()
        self.link.close()

    def poll_once(self) -> None:
        """Pull config and deployment, run what changed, report status."""
        try:
            remote = self.link.fetch_config()
            self._apply(remote)
            self.machine.queue_status = self.queue.stats()
            self.machine.errors = self._errors()
            self.link.post_status(self.machine.status())
            self._recovered()
        except TagtrainError as exc:
            self.push.live = False  # nobody can watch through a server that cannot be reached
            self._trouble(exc.message)

    def _apply(self, remote: RemoteConfig) -> None:
        if remote.config != self.machine.config:
            self.machine.configure(remote.config)
            self._save_config(remote.config)
        self.push.live = remote.live_view
        self.deployer.apply(remote.deployment)

    def _capture(self, jpeg: bytes, camera: str, at: datetime, tags: tuple[str, ...]) -> None:
        self.queue.put(jpeg, CaptureMeta.new(camera, tags, at))
        self.sync.wake()

    def _errors(self) -> list[str]:
        problems = [c.error for c in self.machine.hub.statuses() if c.error]
        return problems + [e for e in (self.deployer.last_error, self.sync.last_error) if e]

    def _trouble(self, message: str) -> None:
        if message != self._problem:
            log.warning("%s", message)
            self._problem = message

    def _recovered(self) -> None:
        if self._problem is not None:
            log.info("the server at %s answers again", self.options.server)
            self._problem = None

    def _cached_config(self) -> MachineConfig | None:
        path = self.options.state / CONFIG_FILE
        try:
            return parse_machine_config(json.loads(path.read_text()), where=str(path))
        except (OSError, ValueError, TagtrainError):
            return None

    def _save_config(self, config: MachineConfig) -> None:
        write_atomic(self.options.state / CONFIG_FILE, config.model_dump_json().encode())


def advertised_url(server: str, http: LocalServer) -> str:
    """The local services' URL as the server's users can reach it: when listening on every
    interface, the address this machine uses to reach the server (a UDP "connect" sends
    nothing; it only picks the route), else the address it listens on."""
    if http.host not in ("0.0.0.0", "::", ""):
        return http.url
    host = urlsplit(server).hostname or "127.0.0.1"
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((host, 9))
            address = str(probe.getsockname()[0])
    except OSError:
        return http.url
    return f"http://{address}:{http.port}"
