"""Machines: registration, machine keys, config, what is deployed to them and what they report.

A machine key is made like a user's API key (a long random token, stored as its sha256 digest) but
starts with ``tm_``, so neither kind of key is ever mistaken for the other.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from tagtrain.errors import BadInput, Conflict, NotFound
from tagtrain.machine_config import NAME_PATTERN, AgentStatus, MachineConfig
from tagtrain.store import model_versions
from tagtrain.store.tables import Machine, Model, ModelVersion, utcnow
from tagtrain.store.users import digest

KEY_PREFIX = "tm_"
ONLINE_WITHIN = timedelta(seconds=30)


@dataclass(frozen=True)
class Deployment:
    """The version a machine runs now: the pinned one, or the newest when it follows latest."""

    model: str
    version: int
    pinned: bool
    package_dir: Path

    def manifest_sha256(self) -> str:
        """The digest the agent checks the downloaded ``manifest.json`` against."""
        try:
            data = (self.package_dir / "manifest.json").read_bytes()
        except OSError as exc:
            raise NotFound(
                f"the package of {self.model}@{self.version} is missing its manifest.json "
                f"({exc.strerror or exc}); train or export that version again"
            ) from exc
        return hashlib.sha256(data).hexdigest()


def normalize_name(raw: str) -> str:
    name = raw.strip()
    if not re.fullmatch(NAME_PATTERN, name):
        raise BadInput(
            f"machine name {raw!r} must be 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def _new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _set_key(machine: Machine, token: str) -> None:
    machine.key_hash = digest(token)
    machine.key_prefix = token[:10]


def create(session: Session, *, name: str) -> tuple[Machine, str]:
    """Register a machine; the plain key is returned once and never stored."""
    name = normalize_name(name)
    if session.scalar(select(Machine.id).where(Machine.name == name)) is not None:
        raise Conflict(f"a machine named {name!r} exists already; choose another name")
    token = _new_key()
    machine = Machine(name=name, config=MachineConfig().model_dump_json())
    _set_key(machine, token)
    session.add(machine)
    session.flush()
    return machine, token


def list_machines(session: Session) -> list[Machine]:
    return list(session.scalars(select(Machine).order_by(Machine.name)))


def get(session: Session, machine_id: int) -> Machine:
    machine = session.get(Machine, machine_id)
    if machine is None:
        raise NotFound(f"no machine with id {machine_id}")
    return machine


def config_of(machine: Machine) -> MachineConfig:
    return MachineConfig.model_validate_json(machine.config or "{}")


def set_config(session: Session, *, machine_id: int, config: MachineConfig) -> Machine:
    machine = get(session, machine_id)
    machine.config = config.model_dump_json()
    return machine


def set_deployment(
    session: Session, *, machine_id: int, model: str, version: int | None
) -> Machine:
    """Deploy ``model`` pinned to ``version``, or following its newest version when None."""
    machine = get(session, machine_id)
    found = model_versions.get_model(session, model)
    if version is not None:
        model_versions.resolve(session, f"{found.name}@{version}")
    elif _newest(session, found.id) is None:
        raise NotFound(f"model {found.name!r} has no version yet; train one before deploying it")
    machine.deploy_model_id = found.id
    machine.deploy_version = version
    return machine


def clear_deployment(session: Session, *, machine_id: int) -> Machine:
    machine = get(session, machine_id)
    machine.deploy_model_id = None
    machine.deploy_version = None
    return machine


def rotate_key(session: Session, *, machine_id: int) -> tuple[Machine, str]:
    """A new key; the old one stops working at once."""
    machine = get(session, machine_id)
    token = _new_key()
    _set_key(machine, token)
    return machine, token


def revoke_key(session: Session, *, machine_id: int) -> Machine:
    machine = get(session, machine_id)
    machine.key_hash = None
    return machine


def delete(session: Session, *, machine_id: int) -> None:
    """Delete a machine; its captured images stay (their machine_id becomes NULL)."""
    session.delete(get(session, machine_id))


def machine_for_key(session: Session, token: str) -> Machine | None:
    if not token.startswith(KEY_PREFIX):
        return None
    return session.scalar(select(Machine).where(Machine.key_hash == digest(token)))


def record_status(session: Session, *, machine: Machine, status: AgentStatus) -> None:
    machine.status = status.model_dump_json()
    machine.last_seen_at = utcnow()


def status_of(machine: Machine) -> AgentStatus | None:
    return AgentStatus.model_validate_json(machine.status) if machine.status else None


def is_online(machine: Machine, now: datetime | None = None) -> bool:
    seen = machine.last_seen_at
    return seen is not None and (now or utcnow()) - seen <= ONLINE_WITHIN


def _newest(session: Session, model_id: int) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion)
        .where(ModelVersion.model_id == model_id)
        .order_by(ModelVersion.version.desc())
        .limit(1)
    )


def resolve_deployment(session: Session, machine: Machine, *, data: Path) -> Deployment | None:
    """What ``machine`` should run now, or None. ``data`` is the folder package dirs are under."""
    if machine.deploy_model_id is None:
        return None
    model = session.get(Model, machine.deploy_model_id)
    if model is None:
        return None
    if machine.deploy_version is None:
        row = _newest(session, model.id)
    else:
        row = session.scalar(
            select(ModelVersion).where(
                ModelVersion.model_id == model.id, ModelVersion.version == machine.deploy_version
            )
        )
    if row is None:
        return None
    return Deployment(
        model=model.name,
        version=row.version,
        pinned=machine.deploy_version is not None,
        package_dir=data / row.package_dir,
    )
