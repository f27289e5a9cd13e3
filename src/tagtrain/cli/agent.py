"""``tagtrain agent``: run this machine's cameras and model, managed by a server or stand-alone."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from tagtrain.cli.common import err, handled
from tagtrain.errors import BadInput


def register(app: typer.Typer) -> None:
    app.command()(agent)


@handled
def agent(
    server: Annotated[str | None, typer.Option(help="The tagtrain server's URL.")] = None,
    machine_key: Annotated[
        str | None,
        typer.Option(
            envvar="TAGTRAIN_MACHINE_KEY", help="The key shown when the machine was made."
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="A stand-alone machine.yaml (no server).")
    ] = None,
    state: Annotated[
        Path, typer.Option(help="Where the agent keeps packages, its config and queued captures.")
    ] = Path("./tagtrain-agent"),
    listen: Annotated[str, typer.Option(help="host:port of the local services.")] = (
        "127.0.0.1:8081"
    ),
    viam_grpc: Annotated[
        str | None, typer.Option(help="host:port for Viam's gRPC API (needs the viam extra).")
    ] = None,
    poll: Annotated[float, typer.Option(help="Seconds between config pulls.", min=0.1)] = 5.0,
    queue_mb: Annotated[
        int,
        typer.Option(
            help="Disk budget of the capture queue in MB; past it the oldest captures are "
            "dropped (and counted).",
            min=1,
        ),
    ] = 1024,
) -> None:
    """Run the cameras, the model and the local vision / ML-model services of this machine."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s tagtrain agent: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request to the server
    stop = _stop_on_signals()
    if config is not None:
        from tagtrain.agent.standalone import StandaloneAgent
        from tagtrain.machine_config import load_standalone_config

        if server or machine_key:
            raise BadInput("give either --config (stand-alone) or --server and --machine-key")
        StandaloneAgent(load_standalone_config(config)).run(stop)
        return
    if not server or not machine_key:
        raise BadInput(
            "give --server URL and --machine-key KEY (from the machine's page), or --config "
            "machine.yaml for a stand-alone machine"
        )
    from tagtrain.agent.connected import ConnectedAgent, ConnectedOptions

    options = ConnectedOptions(server, machine_key, state, listen, viam_grpc, poll, queue_mb)
    err.print(f"tagtrain agent: talking to {server}; state in {state}")
    ConnectedAgent(options).run(stop)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def _handler(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    return stop
