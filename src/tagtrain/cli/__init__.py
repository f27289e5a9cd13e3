"""The ``tagtrain`` command: thin wrappers that parse arguments, call one function, render.

Every command takes ``--data DIR`` (default ``./tagtrain-data`` or ``$TAGTRAIN_DATA``) and most take
``--json`` (one JSON object on stdout). Errors are one sentence on stderr; the exit code is 2 for bad
input (including an import where some files were rejected) and 1 for anything else.
"""

from __future__ import annotations

from types import FrameType
from typing import Annotated

import typer

from tagtrain.cli import accounts, agent, data, models
from tagtrain.cli.common import DEFAULT_DATA, DataOpt, err, handled, settings_for

app = typer.Typer(
    help="tagtrain: gather, tag and train image classifiers on your own machine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data.register(app)
accounts.register(app)
models.register(app)
agent.register(app)


@app.command()
@handled
def serve(
    data_dir: DataOpt = DEFAULT_DATA,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Start the web app (the first visit creates the admin account)."""
    import uvicorn

    from tagtrain.server import create_app

    settings = settings_for(data_dir, host=host, port=port)
    err.print(f"tagtrain: serving {settings.data} on http://{host}:{port}")
    app = create_app(settings)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # The machines' relayed live views never end by themselves, and uvicorn waits for
            # open responses: without this, Ctrl-C would wait for every machine page to close.
            app.state.live_frames.close()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10
    )
    Server(config).run()
