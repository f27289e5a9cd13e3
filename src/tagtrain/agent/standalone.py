"""``tagtrain agent --config machine.yaml``: a machine that is never online. It serves the
package the config names with its cameras; captures need a server to go to, so capture rules in
a stand-alone config are reported and ignored."""

from __future__ import annotations

import logging
import threading

from tagtrain.agent.machine import Machine
from tagtrain.agent.model_slot import ModelSlot
from tagtrain.machine_config import StandaloneConfig
from tagtrain.runtime import Classifier

log = logging.getLogger("tagtrain.agent")


class StandaloneAgent:
    def __init__(self, config: StandaloneConfig) -> None:
        self.config = config
        self.slot = ModelSlot(Classifier.load(config.package))  # refuses a package it can't trust
        self.machine = Machine(self.slot, listen=config.listen, viam_grpc=config.viam_grpc)
        self._stop = threading.Event()
        capturing = [c.name for c in config.cameras if c.capture.enabled]
        if capturing:
            log.warning(
                "capture rules on %s are ignored: a stand-alone agent has no server to send "
                "captures to",
                ", ".join(capturing),
            )

    def start(self) -> None:
        self.machine.configure(self.config)
        self.machine.start()
        log.info("serving %s", self.slot.ref)

    def run(self, stop: threading.Event | None = None) -> None:
        self._stop = stop or self._stop
        self.start()
        try:
            self._stop.wait()
        finally:
            self.machine.stop()

    def stop(self) -> None:
        self._stop.set()
