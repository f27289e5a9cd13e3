"""/api/v1/machines: register machines, edit their config, deploy model versions, manage keys.

The contract is ``docs/agent-protocol.md``; the agent's side of it is in ``agent_api``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from tagtrain.machine_config import AgentStatus, MachineConfig
from tagtrain.server.deps import CurrentUser, SettingsDep, StoreDep
from tagtrain.server.live_frames import LiveFramesDep
from tagtrain.store import machines as machine_store
from tagtrain.store.tables import Machine

router = APIRouter(prefix="/api/v1/machines", tags=["machines"])


class DeploymentOut(BaseModel):
    model: str
    version: int = Field(description="The resolved version: the pinned one, or the newest.")
    pinned: bool


class MachineOut(BaseModel):
    id: int
    name: str
    created_at: datetime
    key_prefix: str
    key_active: bool
    online: bool = Field(description="A status arrived in the last 30 seconds.")
    last_seen_at: datetime | None
    config: MachineConfig
    deployment: DeploymentOut | None
    status: AgentStatus | None

    @classmethod
    def of(cls, session: Session, machine: Machine, data: Path) -> MachineOut:
        found = machine_store.resolve_deployment(session, machine, data=data)
        return cls(
            id=machine.id,
            name=machine.name,
            created_at=machine.created_at,
            key_prefix=machine.key_prefix,
            key_active=machine.key_hash is not None,
            online=machine_store.is_online(machine),
            last_seen_at=machine.last_seen_at,
            config=machine_store.config_of(machine),
            deployment=DeploymentOut(model=found.model, version=found.version, pinned=found.pinned)
            if found
            else None,
            status=machine_store.status_of(machine),
        )


class MachineWithKey(MachineOut):
    key: str = Field(description="The machine key, shown this once; the server keeps its hash.")


class NewMachine(BaseModel):
    name: str = Field(description="letters, digits, _ . -; 1-64")


class DeploymentIn(BaseModel):
    model: str
    version: int | None = Field(None, ge=1, description="None: follow the newest version.")


@router.post("", response_model=MachineWithKey, status_code=201)
def register(
    store: StoreDep, settings: SettingsDep, _user: CurrentUser, body: NewMachine
) -> MachineWithKey:
    """Register a machine. The answer holds its key, shown this once."""
    with store.transaction() as session:
        machine, key = machine_store.create(session, name=body.name)
        out = MachineOut.of(session, machine, settings.data)
    return MachineWithKey(**out.model_dump(), key=key)


@router.get("", response_model=list[MachineOut])
def list_machines(store: StoreDep, settings: SettingsDep, _user: CurrentUser) -> list[MachineOut]:
    with store.transaction() as session:
        return [
            MachineOut.of(session, m, settings.data) for m in machine_store.list_machines(session)
        ]


@router.get("/{machine_id}", response_model=MachineOut)
def get_machine(
    store: StoreDep, settings: SettingsDep, _user: CurrentUser, machine_id: int
) -> MachineOut:
    with store.transaction() as session:
        return MachineOut.of(session, machine_store.get(session, machine_id), settings.data)


@router.put("/{machine_id}/config", response_model=MachineOut)
def put_config(
    store: StoreDep,
    settings: SettingsDep,
    _user: CurrentUser,
    machine_id: int,
    body: MachineConfig,
) -> MachineOut:
    """Replace the machine's config; the agent picks it up on its next poll."""
    with store.transaction() as session:
        machine = machine_store.set_config(session, machine_id=machine_id, config=body)
        return MachineOut.of(session, machine, settings.data)


@router.put("/{machine_id}/deployment", response_model=MachineOut)
def put_deployment(
    store: StoreDep,
    settings: SettingsDep,
    _user: CurrentUser,
    machine_id: int,
    body: DeploymentIn,
) -> MachineOut:
    """Deploy a model: pinned to ``version`` (also how to roll back), or following the newest."""
    with store.transaction() as session:
        machine = machine_store.set_deployment(
            session, machine_id=machine_id, model=body.model, version=body.version
        )
        return MachineOut.of(session, machine, settings.data)


@router.delete("/{machine_id}/deployment", response_model=MachineOut)
def delete_deployment(
    store: StoreDep, settings: SettingsDep, _user: CurrentUser, machine_id: int
) -> MachineOut:
    with store.transaction() as session:
        machine = machine_store.clear_deployment(session, machine_id=machine_id)
        return MachineOut.of(session, machine, settings.data)


@router.post("/{machine_id}/key", response_model=MachineWithKey)
def rotate_key(
    store: StoreDep, settings: SettingsDep, _user: CurrentUser, machine_id: int
) -> MachineWithKey:
    """A new machine key, shown this once; the old key stops working at once."""
    with store.transaction() as session:
        machine, key = machine_store.rotate_key(session, machine_id=machine_id)
        out = MachineOut.of(session, machine, settings.data)
    return MachineWithKey(**out.model_dump(), key=key)


@router.delete("/{machine_id}/key", response_model=MachineOut)
def revoke_key(
    store: StoreDep, settings: SettingsDep, _user: CurrentUser, machine_id: int
) -> MachineOut:
    """Lock the machine out until a new key is made."""
    with store.transaction() as session:
        machine = machine_store.revoke_key(session, machine_id=machine_id)
        return MachineOut.of(session, machine, settings.data)


@router.delete("/{machine_id}", status_code=204, response_class=Response)
def delete_machine(
    store: StoreDep, live: LiveFramesDep, _user: CurrentUser, machine_id: int
) -> Response:
    """Delete the machine; its captured images stay, with no machine."""
    with store.transaction() as session:
        machine_store.delete(session, machine_id=machine_id)
    live.forget(machine_id)  # a later machine given the same id must not show its frames
    return Response(status_code=204)
