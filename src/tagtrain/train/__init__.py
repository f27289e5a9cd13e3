"""Training: backbone, augmentation, head/fine-tune loops, splits, metrics, jobs (torch)."""

from tagtrain.train.backbone import (
    BACKBONES,
    DEFAULT_BACKBONE,
    Backbone,
    BackboneSpec,
    EfficientNetLite0,
    UInt8Normalize,
    get_backbone,
)

__all__ = [
    "BACKBONES",
    "DEFAULT_BACKBONE",
    "Backbone",
    "BackboneSpec",
    "EfficientNetLite0",
    "UInt8Normalize",
    "get_backbone",
]
