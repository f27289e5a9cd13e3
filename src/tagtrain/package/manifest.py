"""``manifest.json``: what a model package holds and how to feed it (pydantic, no torch).

A package is a folder (also served as a ``.zip``) of :data:`PACKAGE_FILES` plus this manifest,
which records the sha256 of each of them. Field by field, as DESIGN.md ("Model package") lists::

    format_version  1
    name, version   the model and which of its trainings ("trash-sorter", 3)
    task            "single_label" (softmax) | "multi_label" (sigmoid)
    labels          class names in output order; labels.txt holds the same, one a line
    input           {name "image", dtype "uint8", layout "NHWC", height, width,
                     resize "stretch-bilinear", color "RGB"}: see tagtrain.media.resize
    output          {name "probability", activation "softmax" | "sigmoid"}: float32 (N, K)
    thresholds      {default, per_label}: a label is reported when its probability >= its
                    threshold (per_label if listed, else default)
    metrics         the test split's metrics (free-form JSON from training)
    dataset         {name, snapshot, counts}: what the model was trained on
    backbone        e.g. "efficientnet-lite0"
    created_at      ISO 8601, UTC
    sha256          {file name: hex digest} for every file in PACKAGE_FILES
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FORMAT_VERSION = 1
MODEL_FP32 = "model.onnx"
MODEL_INT8 = "model.int8.onnx"
LABELS = "labels.txt"
GOLDEN = "golden.npz"
MANIFEST = "manifest.json"
#: The files whose sha256 the manifest records (all but the manifest itself).
PACKAGE_FILES = (MODEL_FP32, MODEL_INT8, LABELS, GOLDEN)

INPUT_NAME: Final = "image"
OUTPUT_NAME: Final = "probability"

Task = Literal["single_label", "multi_label"]
Activation = Literal["softmax", "sigmoid"]
ACTIVATION: dict[str, Activation] = {"single_label": "softmax", "multi_label": "sigmoid"}
#: The threshold a task uses when training chose none: every class for single-label (the top-n
#: cut does the rest), the usual 0.5 for independent sigmoids.
DEFAULT_THRESHOLD: dict[str, float] = {"single_label": 0.0, "multi_label": 0.5}

_HEX64 = re.compile(r"[0-9a-f]{64}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    """The model's one input: already resized RGB pixels; normalisation is inside the graph."""

    name: Literal["image"] = INPUT_NAME
    dtype: Literal["uint8"] = "uint8"
    layout: Literal["NHWC"] = "NHWC"
    height: int = Field(gt=0, le=4096)
    width: int = Field(gt=0, le=4096)
    resize: Literal["stretch-bilinear"] = "stretch-bilinear"
    color: Literal["RGB"] = "RGB"


class OutputSpec(_Strict):
    name: Literal["probability"] = OUTPUT_NAME
    activation: Activation


class Thresholds(_Strict):
    default: float = Field(ge=0.0, le=1.0)
    per_label: dict[str, float] = Field(default_factory=dict)

    @field_validator("per_label")
    @classmethod
    def _in_unit_interval(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if not 0.0 <= v <= 1.0}
        if bad:
            raise ValueError(f"thresholds must lie in [0, 1], got {bad}")
        return value


class DatasetInfo(_Strict):
    name: str = Field(min_length=1)
    snapshot: int | str | None = None  # the snapshot's id in the store that trained the model
    counts: dict[str, int | dict[str, int]] = Field(default_factory=dict)  # e.g. images per split


class Manifest(_Strict):
    format_version: int = FORMAT_VERSION
    name: str = Field(min_length=1, max_length=200)
    version: int = Field(ge=1)
    task: Task
    labels: list[str]
    input: InputSpec
    output: OutputSpec
    thresholds: Thresholds
    metrics: dict[str, Any] = Field(default_factory=dict)
    dataset: DatasetInfo
    backbone: str = Field(min_length=1)
    created_at: datetime
    sha256: dict[str, str] = Field(default_factory=dict)

    @field_validator("format_version")
    @classmethod
    def _known_format(cls, value: int) -> int:
        if value > FORMAT_VERSION:
            raise ValueError(
                f"format_version {value} is newer than this tagtrain reads ({FORMAT_VERSION}); "
                "upgrade tagtrain"
            )
        if value < 1:
            raise ValueError(f"format_version must be at least 1, got {value}")
        return value

    @field_validator("labels")
    @classmethod
    def _clean_labels(cls, labels: list[str]) -> list[str]:
        for label in labels:
            if not label.strip() or label != label.strip() or "\n" in label or "\r" in label:
                raise ValueError(
                    f"label {label!r} is empty, has surrounding spaces or a line break"
                )
        duplicates = sorted({lb for lb in labels if labels.count(lb) > 1})
        if duplicates:
            raise ValueError(f"labels must be distinct; repeated: {', '.join(duplicates)}")
        return labels

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("created_at must carry a time zone (UTC)")
        return value

    @field_validator("sha256")
    @classmethod
    def _hex_digests(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [name for name, digest in value.items() if not _HEX64.fullmatch(digest)]
        if bad:
            raise ValueError(f"not a lowercase hex sha256 for {', '.join(bad)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        least = 2 if self.task == "single_label" else 1
        if len(self.labels) < least:
            raise ValueError(f"a {self.task} model needs at least {least} labels")
        if self.output.activation != ACTIVATION[self.task]:
            raise ValueError(
                f"a {self.task} model's output activation is {ACTIVATION[self.task]}, "
                f"not {self.output.activation}"
            )
        unknown = sorted(set(self.thresholds.per_label) - set(self.labels))
        if unknown:
            raise ValueError(f"thresholds.per_label names unknown labels: {', '.join(unknown)}")
        return self

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of the model input."""
        return self.input.height, self.input.width

    def threshold(self, label: str) -> float:
        return self.thresholds.per_label.get(label, self.thresholds.default)

    def threshold_vector(self) -> list[float]:
        """``(K,)`` thresholds in label order: per_label where listed, else default."""
        return [self.threshold(label) for label in self.labels]
