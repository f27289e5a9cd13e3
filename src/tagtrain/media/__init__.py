"""Decode, validate, orient and thumbnail images: Pillow and numpy only (no torch)."""

from tagtrain.media.decode import ImageInfo, ImageLimits, decode_image, to_rgb
from tagtrain.media.resize import model_input, model_inputs
from tagtrain.media.thumbnail import make_thumbnail

__all__ = ["ImageInfo", "ImageLimits", "decode_image", "make_thumbnail", "to_rgb"]
__all__ += ["model_input", "model_inputs"]  # the model input shared by training and serving
