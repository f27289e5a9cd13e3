"""Tags: names, counts, and adding/removing them on images (by ids or by filter)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from sqlalchemy import Select, delete, exists, func, insert, literal, select, update
from sqlalchemy.orm import Session

from tagtrain.errors import BadInput, Conflict, NotFound
from tagtrain.store.tables import ImageTag, Tag

#: A ``SELECT images.id ...`` naming the images an operation applies to.
Selection = Select[int]

MAX_TAG_LEN = 100
# Any printable text but the separators of the CSV formats (';' ',') and path slashes (tags
# appear in URLs), so folder names like "Bottles (green)" or "Mom's" work as tags.
_TAG_BAD = re.compile(r"[;,/\\\x00-\x1f\x7f]")


def normalize_tag(raw: str) -> str:
    """Return the canonical form of a tag name or raise BadInput saying what is wrong."""
    name = " ".join(raw.split())
    if not name:
        raise BadInput("a tag name cannot be empty")
    if len(name) > MAX_TAG_LEN:
        raise BadInput(f"tag {name[:20]!r}... is longer than {MAX_TAG_LEN} characters")
    if name in (".", ".."):
        raise BadInput(f"tag {name!r} cannot be used: it is a path segment in URLs")
    if _TAG_BAD.search(name):
        raise BadInput(f"tag {name!r} cannot hold ';', ',', slashes or control characters")
    return name


def ensure_tags(session: Session, names: Iterable[str]) -> dict[str, int]:
    """Map each (normalized) name to its tag id, creating the tags that do not exist yet."""
    wanted = {normalize_tag(n) for n in names}
    if not wanted:
        return {}
    found = dict(session.execute(select(Tag.name, Tag.id).where(Tag.name.in_(wanted))).all())
    for name in sorted(wanted - found.keys()):
        tag = Tag(name=name)
        session.add(tag)
        session.flush()
        found[name] = tag.id
    return found


def tag_id(session: Session, name: str) -> int:
    found = session.scalar(select(Tag.id).where(Tag.name == name))
    if found is None:
        raise NotFound(f"no tag named {name!r}")
    return found


def list_tags(session: Session) -> list[tuple[str, int]]:
    """Every tag with the number of images carrying it, most used first."""
    n = func.count(ImageTag.image_id)
    stmt = (
        select(Tag.name, n)
        .outerjoin(ImageTag, ImageTag.tag_id == Tag.id)
        .group_by(Tag.id)
        .order_by(n.desc(), Tag.name)
    )
    return [(name, int(c)) for name, c in session.execute(stmt).all()]


def add_tags(session: Session, selection: Selection, names: Iterable[str]) -> int:
    """Tag every selected image with every name; returns the number of new (image, tag) pairs."""
    added = 0
    for tid in ensure_tags(session, names).values():
        chosen = selection.subquery()
        new_pairs = select(literal(tid), chosen.c.id).where(
            ~exists().where(ImageTag.tag_id == tid, ImageTag.image_id == chosen.c.id)
        )
        result = session.execute(insert(ImageTag).from_select(["tag_id", "image_id"], new_pairs))
        added += _rowcount(result)
    return added


def remove_tags(session: Session, selection: Selection, names: Iterable[str]) -> int:
    """Remove the named tags from the selected images; unknown names raise NotFound."""
    tids = [tag_id(session, normalize_tag(n)) for n in names]
    if not tids:
        return 0
    result = session.execute(
        delete(ImageTag).where(
            ImageTag.tag_id.in_(tids), ImageTag.image_id.in_(selection.scalar_subquery())
        )
    )
    return _rowcount(result)


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def rename_tag(session: Session, old: str, new: str) -> None:
    """Rename a tag; if ``new`` exists already, say so (merging is a separate, explicit step)."""
    tid = tag_id(session, old)
    new = normalize_tag(new)
    if new == old:
        return
    if session.scalar(select(Tag.id).where(Tag.name == new)) is not None:
        raise Conflict(f"tag {new!r} exists already; merge {old!r} into it instead")
    session.execute(update(Tag).where(Tag.id == tid).values(name=new))


def merge_tags(session: Session, sources: Sequence[str], into: str) -> int:
    """Move every image of the ``sources`` tags onto ``into`` and delete the sources."""
    target = ensure_tags(session, [into])[normalize_tag(into)]
    moved = 0
    for name in sources:
        sid = tag_id(session, name)
        if sid == target:
            continue
        moved += add_tags(
            session, select(ImageTag.image_id.label("id")).where(ImageTag.tag_id == sid), [into]
        )
        session.execute(delete(Tag).where(Tag.id == sid))
    return moved


def delete_tag(session: Session, name: str) -> None:
    session.execute(delete(Tag).where(Tag.id == tag_id(session, name)))


def tags_of(session: Session, image_ids: Sequence[int]) -> dict[int, list[str]]:
    """The tag names of each image (sorted), for the images in one page."""
    out: dict[int, list[str]] = {i: [] for i in image_ids}
    stmt = (
        select(ImageTag.image_id, Tag.name)
        .join(Tag, Tag.id == ImageTag.tag_id)
        .where(ImageTag.image_id.in_(image_ids))
        .order_by(Tag.name)
    )
    for image_id, name in session.execute(stmt):
        out[image_id].append(name)
    return out
