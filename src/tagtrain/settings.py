"""One typed Settings object. Built by the app factory or the CLI, never at import time.

Values come from arguments, then ``TAGTRAIN_*`` environment variables, then the defaults here.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TAGTRAIN_", extra="forbid")

    data: Path = Field(default=Path("./tagtrain-data"), description="Folder for the DB and blobs.")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means SQLite in data.")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    max_upload_bytes: int = Field(default=50 * MiB, gt=0, description="Per-file upload limit.")
    max_image_pixels: int = Field(
        default=100_000_000, gt=0, description="Decompression-bomb limit (width x height)."
    )
    max_image_side: int = Field(default=20_000, gt=0, description="Largest accepted width/height.")
    thumbnail_size: int = Field(default=256, ge=32, le=1024)

    max_zip_entries: int = Field(default=100_000, gt=0)
    max_zip_bytes: int = Field(default=8 * 1024 * MiB, gt=0, description="Total uncompressed.")

    worker: bool = Field(default=True, description="Run a training worker beside the web app.")
    worker_poll_s: float = Field(default=1.0, gt=0)
    train_time_budget_s: float = Field(
        default=20.0,
        gt=0,
        description="Seconds a training may take in all; the optional fine-tuning stage runs "
        "only when what is left of it allows.",
    )

    session_max_age_s: int = Field(default=14 * 24 * 3600, gt=0)
    secure_cookies: bool = False

    @field_validator("data")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data / 'tagtrain.db'}"

    @property
    def blob_dir(self) -> Path:
        return self.data / "blobs"

    @property
    def package_dir(self) -> Path:
        return self.data / "packages"

    @property
    def cache_dir(self) -> Path:
        return self.data / "cache"
