"""A large store made fast: rows inserted with SQLAlchemy Core, tiny shared thumbnails.

Every image gets its own sha256 (the column is unique) and so its own thumbnail file, but the
bytes are one of four small JPEGs (one colour per tag, grey for untagged). The made-up digests
are the image numbers in hex, so the files share one blob folder (quick to write and delete).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

from PIL import Image as PILImage
from sqlalchemy import insert

from tagtrain.settings import Settings
from tagtrain.store import open_store
from tagtrain.store import users as user_store
from tagtrain.store.blobs import LocalBlobStore
from tagtrain.store.tables import Dataset, DatasetImage, Image, ImageTag, Machine, Tag
from tests.conftest import ADMIN

COLOURS = {
    "red": (214, 69, 65),
    "green": (62, 160, 85),
    "blue": (52, 106, 207),
    "": (150, 150, 150),
}


@dataclass(frozen=True)
class BigStore:
    """What :func:`fill_store` made, for the test's expected counts."""

    n: int
    newest: datetime
    per_tag: dict[str, int]
    untagged: int
    in_dataset: int
    from_machine: int

    def created_at(self, i: int) -> datetime:
        """When image ``i`` was added: one a minute, the last one now."""
        return self.newest - timedelta(minutes=self.n - i)


def _jpeg(rgb: tuple[int, int, int]) -> bytes:
    buf = BytesIO()
    PILImage.new("RGB", (48, 48), rgb).save(buf, "JPEG", quality=70)
    return buf.getvalue()


def tag_of(i: int) -> str:
    """Image i carries red, green or blue (three in ten each), or nothing (one in ten)."""
    return ("red", "red", "red", "green", "green", "green", "blue", "blue", "blue", "")[i % 10]


def fill_store(data: Path, n: int) -> BigStore:
    """Create the admin and ``n`` images: tagged as :func:`tag_of` says, every second one in the
    dataset "big", every fifth one captured by the machine "cam-1"."""
    store = open_store(Settings(data=data))
    thumbs = {name: _jpeg(rgb) for name, rgb in COLOURS.items()}
    thumbs_dir = store.thumbnails
    assert isinstance(thumbs_dir, LocalBlobStore)
    now = datetime.now(UTC)
    with store.transaction() as session:
        user_store.create_user(session, username=ADMIN[0], password=ADMIN[1], is_admin=True)
        machine, dataset = Machine(name="cam-1"), Dataset(name="big")
        tag_rows = {name: Tag(name=name) for name in ("red", "green", "blue")}
        session.add_all([machine, dataset, *tag_rows.values()])
        session.flush()
        tag_ids = {name: t.id for name, t in tag_rows.items()}
        machine_id, ds_id = machine.id, dataset.id
        rows: list[dict[str, object]] = []
        tags: list[dict[str, int]] = []
        members: list[dict[str, int]] = []
        for i in range(1, n + 1):
            sha = f"{i:064x}"
            from_machine = i % 5 == 0
            rows.append(
                {
                    "id": i,
                    "sha256": sha,
                    "width": 48,
                    "height": 48,
                    "format": "JPEG",
                    "mime": "image/jpeg",
                    "size_bytes": 700,
                    "source": "machine" if from_machine else "import",
                    "machine_id": machine_id if from_machine else None,
                    "camera": "front" if from_machine else None,
                    "captured_at": None,
                    "created_at": now - timedelta(minutes=n - i),
                    "original_name": f"img{i:05d}.jpg",
                }
            )
            if tag_of(i):
                tags.append({"tag_id": tag_ids[tag_of(i)], "image_id": i})
            if i % 2 == 0:
                members.append({"dataset_id": ds_id, "image_id": i})
            path = thumbs_dir.path(sha)
            if i == 1:
                path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(thumbs[tag_of(i)])
        session.execute(insert(Image), rows)
        session.execute(insert(ImageTag), tags)
        session.execute(insert(DatasetImage), members)
    store.close()
    per_tag = {
        t: sum(1 for i in range(1, n + 1) if tag_of(i) == t) for t in ("red", "green", "blue")
    }
    return BigStore(
        n=n,
        newest=now,
        per_tag=per_tag,
        untagged=n - sum(per_tag.values()),
        in_dataset=n // 2,
        from_machine=n // 5,
    )
