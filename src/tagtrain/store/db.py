"""Engine, sessions and migrations. SQLite runs in WAL mode with foreign keys enforced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """Create the engine; for SQLite, make the folder and set the pragmas on every connection."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # NORMAL is durable in WAL mode except for the last commits on power loss, never corrupt.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def head_revision() -> str:
    """The newest migration. Revision ids are zero-padded sequence numbers that start each file
    name (``0002_jobs....py``), so the head is the largest; a test checks Alembic agrees."""
    return max(p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (OperationalError, ProgrammingError):  # no table yet: an empty database
        return None


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (creates it on an empty database).
    Alembic itself is imported only when there is something to do: it costs every CLI command
    about a third of a second of start-up otherwise."""
    if current_revision(engine) == head_revision():
        return
    from alembic import command  # noqa: PLC0415
    from alembic.config import Config  # noqa: PLC0415

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    ddl_engine = _transactional_ddl_engine(engine)
    try:
        with ddl_engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")  # re-reads the revision under the lock: may be a no-op
    finally:
        if ddl_engine is not engine:
            ddl_engine.dispose()


def _transactional_ddl_engine(engine: Engine) -> Engine:
    """Python's sqlite3 driver commits each CREATE TABLE on its own, so a process killed mid-
    migration would leave half a schema that no later run can migrate. This engine hands the
    driver's transaction control to us and opens with BEGIN IMMEDIATE: the whole migration
    commits or none of it does, and two processes starting on a new database take turns."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return engine
    ddl = create_engine(engine.url, connect_args={"check_same_thread": False, "timeout": 30})
    event.listen(ddl, "connect", _sqlite_manual_transactions)
    event.listen(ddl, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    return ddl


def _sqlite_manual_transactions(dbapi_conn: Any, record: Any) -> None:
    _sqlite_pragmas(dbapi_conn, record)
    dbapi_conn.isolation_level = None


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
