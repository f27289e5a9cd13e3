"""The Machines pages: every machine (online or not, what it runs, its cameras' frame rates, its
latest predictions) with the register form, and one machine's page (status, live stream, config
form, deployment and rollback, key, and a test panel).

The pages are shells; ``static/machines.js`` and ``static/machine.js`` fill them from the
machines API and keep the status live by polling it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from tagtrain.errors import TagtrainError
from tagtrain.server.deps import StoreDep
from tagtrain.server.routes.web import PageUser, render, render_error
from tagtrain.store import machines as machine_store

router = APIRouter(include_in_schema=False)


@router.get("/machines", response_class=HTMLResponse)
def machines_page(request: Request, user: PageUser) -> Response:
    return render(request, "machines.html", user=user, tab="machines")


@router.get("/machines/{machine_id}", response_class=HTMLResponse)
def machine_page(request: Request, store: StoreDep, user: PageUser, machine_id: int) -> Response:
    try:
        with store.transaction() as session:
            machine = machine_store.get(session, machine_id)
    except TagtrainError as exc:
        return render_error(request, user, exc)
    return render(
        request,
        "machine.html",
        user=user,
        tab="machines",
        machine_id=machine.id,
        machine_name=machine.name,
    )
