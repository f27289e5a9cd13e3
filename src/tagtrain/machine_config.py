"""The machine config: what the server stores for a machine and what the agent runs.

It sits beside ``settings`` and ``errors`` because two parts that must not import each other
both speak it: the server validates and stores it, the agent (which talks to the server over
HTTP only) validates it again when it arrives, and the stand-alone agent reads it from YAML.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tagtrain.errors import BadInput

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, description="letters, digits, _ . -; 1-64")]
Confidence = Annotated[float, Field(ge=0.0, le=1.0)]
_M = TypeVar("_M", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaptureRule(_Strict):
    """Which frames of a camera are kept and synced back to the Data tab. Off unless
    ``frequency_hz > 0``. A frame is kept when the camera's last capture is at least
    ``1 / frequency_hz`` seconds old, its top confidence lies in ``[min_confidence,
    max_confidence]``, its top label is in ``labels`` (when given), and fewer than
    ``max_per_minute`` frames were kept in the last minute."""

    frequency_hz: float = Field(0.0, ge=0.0, le=30.0)
    tags: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(default_factory=list)
    min_confidence: Confidence = 0.0
    max_confidence: Confidence = 1.0
    labels: list[str] = Field(default_factory=list)
    max_per_minute: int = Field(60, ge=1, le=6000)

    @model_validator(mode="after")
    def _band(self) -> CaptureRule:
        if self.min_confidence > self.max_confidence:
            raise ValueError(
                f"min_confidence {self.min_confidence} is above max_confidence "
                f"{self.max_confidence}; the band would never match"
            )
        return self

    @property
    def enabled(self) -> bool:
        return self.frequency_hz > 0


class CameraConfig(_Strict):
    """A camera: an OpenCV device index, an RTSP/HTTP stream URL, a video file, or a folder of
    images (a test camera). ``max_fps`` caps the frame rate; unset, a video file plays at its
    own rate, a folder at 10 frames a second, a device or stream as fast as it delivers."""

    name: Name
    source: int | str
    max_fps: float | None = Field(None, gt=0.0, le=1000.0)
    capture: CaptureRule = Field(default_factory=CaptureRule)

    @field_validator("source")
    @classmethod
    def _source(cls, value: int | str) -> int | str:
        if isinstance(value, int):
            if value < 0:
                raise ValueError("a device index is 0 or more")
            return value
        value = value.strip()
        if not value:
            raise ValueError("give a device index, a stream URL, a video file or a folder")
        return int(value) if re.fullmatch(r"\d{1,3}", value) else value


class VisionConfig(_Strict):
    """The vision service: its name, and confidences below which a label is not reported (on top
    of the thresholds the package's manifest sets). ``n`` is how many labels the live stream and
    the status show."""

    name: Name = "classifier"
    default_minimum_confidence: Confidence = 0.0
    label_confidences: dict[str, Confidence] = Field(default_factory=dict)
    n: int = Field(3, ge=0, le=100)

    def minimum_for(self, label: str) -> float:
        return self.label_confidences.get(label, self.default_minimum_confidence)


class MachineConfig(_Strict):
    """What a machine runs, as the server stores it and sends it to the agent."""

    cameras: list[CameraConfig] = Field(default_factory=list, max_length=16)
    vision: VisionConfig = Field(default_factory=VisionConfig)

    @field_validator("cameras")
    @classmethod
    def _unique_names(cls, cameras: list[CameraConfig]) -> list[CameraConfig]:
        names = [c.name for c in cameras]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise ValueError(f"camera names must differ; repeated: {', '.join(doubled)}")
        return cameras

    def camera(self, name: str) -> CameraConfig | None:
        return next((c for c in self.cameras if c.name == name), None)


class StandaloneConfig(MachineConfig):
    """``tagtrain agent --config machine.yaml``: a machine that never talks to a server."""

    package: Path
    listen: str = "127.0.0.1:8081"
    viam_grpc: str | None = None

    @field_validator("listen", "viam_grpc")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            split_address(value)
        return value


def split_address(address: str) -> tuple[str, int]:
    """``"host:port"`` -> ``("host", port)`` (port 0: any free one); a ValueError says what is wrong."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{address!r} is not host:port (e.g. 127.0.0.1:8081)")
    return host.strip("[]"), int(port)


def parse_machine_config(data: Any, *, where: str = "the machine config") -> MachineConfig:
    return _validate(MachineConfig, data, where)


def load_standalone_config(path: Path) -> StandaloneConfig:
    """Read machine.yaml; relative paths in it (package, camera folders and files) are taken
    relative to the file's folder, so a config travels with what it names."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInput(f"cannot read the config {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise BadInput(f"{path} is not valid YAML: {exc}") from exc
    config = _validate(StandaloneConfig, data, str(path))
    base = path.parent
    cameras = [c.model_copy(update={"source": _relative(c.source, base)}) for c in config.cameras]
    return config.model_copy(update={"package": base / config.package, "cameras": cameras})


def _relative(source: int | str, base: Path) -> int | str:
    if isinstance(source, int) or "://" in source or Path(source).is_absolute():
        return source
    return str(base / source)


def _validate(model: type[_M], data: Any, where: str) -> _M:
    if not isinstance(data, dict):
        raise BadInput(f"{where} must be a mapping of settings, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors()
        )
        raise BadInput(f"{where} is not valid: {problems}") from exc


class LabelScore(BaseModel):
    class_name: str
    confidence: float


class Classifications(BaseModel):
    """GetClassifications' answer, from the server and from every machine alike."""

    classifications: list[LabelScore]

    @classmethod
    def of(cls, found: Sequence[Classified]) -> Classifications:
        return cls(classifications=[scores(c) for c in found])


class Classified(Protocol):
    """What the runtime's Classification looks like (kept structural: no runtime import here)."""

    @property
    def class_name(self) -> str: ...

    @property
    def confidence(self) -> float: ...


def scores(found: Classified) -> LabelScore:
    return LabelScore(class_name=found.class_name, confidence=found.confidence)


class CameraStatus(BaseModel):
    name: str
    ok: bool
    fps: float = 0.0
    error: str | None = None


class RecentPrediction(BaseModel):
    camera: str
    at: datetime
    classifications: list[LabelScore]


class QueueStatus(BaseModel):
    pending: int = 0
    bytes: int = 0
    dropped: int = 0
    synced: int = 0


class AgentStatus(BaseModel):
    """What an agent reports to the server every few seconds (POST /api/v1/agent/status)."""

    model: str | None = None  # "name@version" being served
    cameras: list[CameraStatus] = Field(default_factory=list, max_length=16)
    recent: list[RecentPrediction] = Field(default_factory=list, max_length=20)
    queue: QueueStatus = Field(default_factory=QueueStatus)
    stream_url: str | None = Field(None, max_length=300)  # the agent's local HTTP base URL
    errors: list[Annotated[str, Field(max_length=500)]] = Field(default_factory=list, max_length=20)
    agent_version: str = ""
