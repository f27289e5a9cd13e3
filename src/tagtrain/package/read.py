"""Open a model package folder and check it before anything runs it (no torch).

:func:`read_package` parses ``manifest.json``, checks that every file it lists is there with the
recorded sha256, that ``labels.txt`` says what the manifest says and that ``golden.npz`` holds
inputs and probabilities of the right shapes. :func:`check_io` checks an onnxruntime session's
tensor names, types and layout against the manifest. Whatever is wrong becomes a
:class:`~tagtrain.errors.PackageError` naming the file at fault; nothing half-checked is returned.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from tagtrain.errors import PackageError
from tagtrain.package.manifest import (
    GOLDEN,
    LABELS,
    MANIFEST,
    MODEL_FP32,
    MODEL_INT8,
    PACKAGE_FILES,
    Manifest,
)

MAX_MANIFEST_BYTES = 1_000_000


class Golden(NamedTuple):
    """``golden.npz``: ``image`` uint8 ``(G, H, W, 3)``; ``probability`` float32 ``(G, K)`` from
    the training (torch) graph; ``probability_int8`` float32 ``(G, K)`` from ``model.int8.onnx``."""

    image: NDArray[np.uint8]
    probability: NDArray[np.float32]
    probability_int8: NDArray[np.float32]


@dataclass(frozen=True)
class Package:
    """A checked package folder."""

    root: Path
    manifest: Manifest

    @property
    def labels(self) -> list[str]:
        return self.manifest.labels

    def path(self, name: str) -> Path:
        return self.root / name

    def model_path(self, *, quantized: bool = False) -> Path:
        return self.root / (MODEL_INT8 if quantized else MODEL_FP32)

    def golden(self) -> Golden:
        return load_golden(self.root / GOLDEN, self.manifest)


def read_package(root: str | Path) -> Package:
    """Parse and verify the package in folder ``root``; raise PackageError naming what is wrong."""
    root = Path(root)
    if not (root / MANIFEST).is_file():
        what = "is not a folder" if not root.is_dir() else f"holds no {MANIFEST}"
        raise PackageError(str(root), f"{what}, so it is not a model package")
    manifest = load_manifest(root / MANIFEST)
    listed = set(manifest.sha256)
    missing_from_manifest = sorted(set(PACKAGE_FILES) - listed)
    if missing_from_manifest:
        raise PackageError(
            str(root / MANIFEST), f"records no sha256 for {', '.join(missing_from_manifest)}"
        )
    for name in sorted(listed):
        if Path(name).name != name:
            raise PackageError(str(root / MANIFEST), f"lists {name!r}, which is not a plain name")
        verify_sha256(root / name, manifest.sha256[name])
    check_labels(root / LABELS, manifest)
    load_golden(root / GOLDEN, manifest)
    return Package(root, manifest)


def load_manifest(path: Path) -> Manifest:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PackageError(str(path), f"cannot be read ({exc.strerror or exc})") from exc
    if len(raw) > MAX_MANIFEST_BYTES:
        raise PackageError(str(path), f"is {len(raw):,} bytes, over the 1 MB a manifest may be")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackageError(str(path), f"is not valid JSON ({exc})") from exc
    return parse_manifest(data, str(path))


def parse_manifest(data: Any, name: str = MANIFEST) -> Manifest:
    """Validate a decoded ``manifest.json``; the first problem becomes one sentence."""
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the top level"
        problem = str(first["msg"]).removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise PackageError(name, f"invalid manifest at {where}: {problem}{more}") from exc


def sha256_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    try:
        actual = sha256_file(path)
    except FileNotFoundError as exc:
        raise PackageError(str(path), "is missing from the package") from exc
    except OSError as exc:
        raise PackageError(str(path), f"cannot be read ({exc.strerror or exc})") from exc
    if actual != expected:
        raise PackageError(
            str(path),
            f"sha256 {actual[:12]}... does not match the {expected[:12]}... recorded in "
            f"{MANIFEST}: the file was changed or damaged; export the package again",
        )


def check_labels(path: Path, manifest: Manifest) -> None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise PackageError(str(path), "is not UTF-8 text") from exc
    if lines != manifest.labels:
        raise PackageError(
            str(path), f"does not list the {len(manifest.labels)} labels of {MANIFEST} in order"
        )


def load_golden(path: Path, manifest: Manifest) -> Golden:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise PackageError(str(path), f"cannot be read as .npz ({exc})") from exc
    wanted = set(Golden._fields)
    if set(arrays) != wanted:
        raise PackageError(str(path), f"holds {sorted(arrays)}, expected exactly {sorted(wanted)}")
    image, probs, probs_int8 = (arrays[key] for key in Golden._fields)
    height, width = manifest.size
    count, k = image.shape[0] if image.ndim else 0, len(manifest.labels)
    if image.dtype != np.uint8 or image.shape[1:] != (height, width, 3) or count < 1:
        raise PackageError(
            str(path), f"image is {image.dtype} {image.shape}, expected uint8 (G, {height}, "
            f"{width}, 3) with G >= 1",
        )  # fmt: skip
    for key, array in (("probability", probs), ("probability_int8", probs_int8)):
        if array.dtype != np.float32 or array.shape != (count, k):
            raise PackageError(
                str(path), f"{key} is {array.dtype} {array.shape}, expected float32 ({count}, {k})"
            )
    return Golden(image, probs, probs_int8)


class _TensorInfo(Protocol):
    """What onnxruntime's ``NodeArg`` offers."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def shape(self) -> list[int | str | None]: ...


class _Session(Protocol):
    def get_inputs(self) -> list[_TensorInfo]: ...
    def get_outputs(self) -> list[_TensorInfo]: ...


def check_io(session: _Session, manifest: Manifest, name: str) -> None:
    """Refuse a graph whose input/output names, types or shapes are not the manifest's."""
    height, width = manifest.size
    k = len(manifest.labels)
    inputs, outputs = session.get_inputs(), session.get_outputs()
    want_in = f"one input {manifest.input.name!r}: uint8 [N, {height}, {width}, 3] (NHWC)"
    want_out = f"one output {manifest.output.name!r}: float32 [N, {k}]"
    if len(inputs) != 1 or inputs[0].name != manifest.input.name:
        got = ", ".join(repr(i.name) for i in inputs)
        raise PackageError(name, f"has inputs {got}; a tagtrain model has {want_in}")
    if len(outputs) != 1 or outputs[0].name != manifest.output.name:
        got = ", ".join(repr(o.name) for o in outputs)
        raise PackageError(name, f"has outputs {got}; a tagtrain model has {want_out}")
    inp, out = inputs[0], outputs[0]
    if inp.type != "tensor(uint8)" or _fixed(inp.shape) != [None, height, width, 3]:
        raise PackageError(name, f"input is {inp.type} {inp.shape}; expected {want_in}")
    if out.type != "tensor(float)" or _fixed(out.shape) != [None, k]:
        raise PackageError(name, f"output is {out.type} {out.shape}; expected {want_out}")


def _fixed(dims: list[int | str | None]) -> list[int | None]:
    """Static sizes as ints, symbolic ones as None; a fixed batch axis reads -1 so that it never
    matches: the batch must be dynamic (``N``) for batches and single images alike."""
    out: list[int | None] = [d if isinstance(d, int) else None for d in dims]
    if out and out[0] is not None:
        out[0] = -1
    return out
