"""The schema comes from Alembic migrations; start-up skips Alembic when nothing is to do."""

from __future__ import annotations

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from tagtrain.settings import Settings
from tagtrain.store import open_store
from tagtrain.store.db import MIGRATIONS, current_revision, head_revision
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
