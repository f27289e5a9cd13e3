"""The schema comes from Alembic migrations; start-up skips Alembic when nothing is to do."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event, inspect

from tagtrain.settings import Settings
from tagtrain.store import open_store
from tagtrain.store.db import MIGRATIONS, current_revision, head_revision, make_engine
from tagtrain.store.tables import Base


def test_head_revision_matches_alembic() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == head_revision()


def test_migrations_create_every_table_and_reopen_is_idempotent(settings: Settings) -> None:
    store = open_store(settings)
    assert current_revision(store.engine) == head_revision()
    assert set(Base.metadata.tables) <= set(inspect(store.engine).get_table_names())
    store.close()
    again = open_store(settings)
    assert current_revision(again.engine) == head_revision()
    again.close()


def test_a_migration_that_dies_halfway_leaves_no_half_schema(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CLI killed while it creates the schema must not leave tables without a revision (the
    next run would then fail on 'table already exists'): the migration is one transaction."""
    created: list[str] = []

    def die_on_third_table(_conn: Any, _cur: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().startswith("CREATE TABLE"):
            created.append(statement)
            if len(created) == 3:
                raise RuntimeError("killed")

    event.listen(Engine, "before_cursor_execute", die_on_third_table)
    try:
        with pytest.raises(RuntimeError, match="killed"):
            open_store(settings)
    finally:
        event.remove(Engine, "before_cursor_execute", die_on_third_table)
    engine = make_engine(settings.db_url)
    assert inspect(engine).get_table_names() == []
    engine.dispose()
    store = open_store(settings)
    assert current_revision(store.engine) == head_revision()
    store.close()


def test_two_processes_opening_a_new_store_at_once_both_succeed(settings: Settings) -> None:
    code = (
        "import sys; from tagtrain.settings import Settings; from tagtrain.store import open_store;"
        "open_store(Settings(data=sys.argv[1])).close()"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(settings.data)], stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
