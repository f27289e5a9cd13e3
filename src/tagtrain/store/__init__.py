"""The store: SQLAlchemy tables and migrations, blob stores, and query functions.

:func:`open_store` builds a :class:`Store` from Settings: the engine (schema migrated to the newest
revision), a session factory, and two content-addressed blob stores (originals and thumbnails).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tagtrain.settings import Settings
from tagtrain.store.blobs import BlobStore, LocalBlobStore
from tagtrain.store.db import make_engine, migrate, session_factory


@dataclass
class Store:
    engine: Engine
    sessions: sessionmaker[Session]
    originals: BlobStore
    thumbnails: BlobStore

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any error."""
        with self.sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()


def open_store(settings: Settings) -> Store:
    settings.data.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    migrate(engine)
    originals = LocalBlobStore(settings.blob_dir)
    # Thumbnails are derived: made again from the original when missing, so no fsync for them.
    thumbnails = LocalBlobStore(settings.data / "thumbnails", suffix=".jpg", durable=False)
    for blobs in (originals, thumbnails):
        blobs.remove_stale_temp_files()
    return Store(engine, session_factory(engine), originals, thumbnails)
