"""The grpclib server that answers Viam's vision, ML-model and robot services on one address, on
its own thread and event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading

from grpclib.server import Server

from tagtrain.agent.services import Services
from tagtrain.agent.viam_grpc.mlmodel import MLModelService
from tagtrain.agent.viam_grpc.robot import RobotService
from tagtrain.agent.viam_grpc.vision import VisionService
from tagtrain.errors import BadInput, Unavailable

log = logging.getLogger("tagtrain.agent.viam_grpc")

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


class ViamGrpcServer:
    """Viam's vision and ML-model services on ``host:port``, served by grpclib on its own thread
    and event loop, so the agent's (synchronous) threads can own one: :meth:`start` returns once
    it listens, :meth:`stop` closes it. ``port=0`` picks a free port; :attr:`port` tells which.
    The ML-model service answers to ``mlmodel_name`` (default: the vision service's name)."""

    def __init__(
        self,
        services: Services,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        mlmodel_name: str | None = None,
    ) -> None:
        self.services = services
        self.host = host
        self.mlmodel_name = mlmodel_name or services.name
        self._asked_port = port
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: Exception | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the picked one when asked for 0)."""
        if self._port is None:
            raise RuntimeError("the Viam gRPC server is not started")
        return self._port

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def handlers(self) -> list[VisionService | MLModelService | RobotService]:
        return [
            VisionService(self.services),
            MLModelService(self.services, self.mlmodel_name),
            RobotService(self.services.name, self.mlmodel_name),
        ]

    def start(self) -> None:
        """Bind and serve; raises BadInput naming the address when it cannot listen there."""
        if self._thread is not None:
            raise RuntimeError("the Viam gRPC server is already started")
        self._ready.clear()
        self._failure = None
        sock = _bind(self.host, self._asked_port)
        self._port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve(sock),), name="viam-grpc", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise Unavailable(f"the Viam gRPC server on {self.address} did not start in time")
        if self._failure is not None:
            self._thread.join()
            self._thread = None
            raise self._failure

    def stop(self) -> None:
        """Stop listening, cancel requests in flight and wait for the thread (idempotent)."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed since the check
                loop.call_soon_threadsafe(stopping.set)
        thread.join(STOP_TIMEOUT_S)
        self._thread = None

    def __enter__(self) -> ViamGrpcServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self, sock: socket.socket) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            server = Server(self.handlers())
            await server.start(sock=sock)
        except Exception as exc:  # handed to start(), which raises it in the caller's thread
            sock.close()
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        log.info("serving Viam's vision and ML model services on %s", self.address)
        try:
            await self._stopping.wait()
        finally:
            server.close()
            await server.wait_closed()


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket, bound here so that a busy or bad address fails in :meth:`start`
    with a sentence, and so that port 0 tells which port it got."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=100)
    except OSError as exc:
        raise BadInput(
            f"cannot serve Viam gRPC on {host}:{port}: {exc.strerror or exc}; pick another "
            "viam_grpc address in the machine config"
        ) from exc
