"""The snapshot's pictures: loaded by sha256, decoded with the media rules, errors naming the image.

A blob that is missing or does not decode stops the training with :class:`BadInput` saying which
image (id and sha256) and why, instead of a crash deep inside a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from tagtrain.errors import BadInput, InvalidImage, TagtrainError
from tagtrain.media import ImageLimits, decode_image, model_input
from tagtrain.train.examples import Example


class SnapshotImages:
    """Decodes example ``i`` on demand and remembers plain model inputs it was told to keep."""

    def __init__(
        self,
        load_image: Callable[[str], bytes],
        examples: Sequence[Example],
        size: int,
        limits: ImageLimits | None = None,
    ) -> None:
        self._load = load_image
        self._examples = examples
        self.size = size
        self._limits = limits or ImageLimits()
        self._plain: dict[int, NDArray[np.uint8]] = {}

    def picture(self, i: int) -> Image.Image:
        """The oriented RGB picture of example ``i``."""
        ex = self._examples[i]
        name = f"image {ex.image_id} (sha256 {ex.sha256[:12]})"
        try:
            data = self._load(ex.sha256)
        except (TagtrainError, OSError, KeyError) as exc:
            message = exc.message if isinstance(exc, TagtrainError) else repr(exc)
            raise BadInput(f"{name} of the training snapshot could not be read: {message}") from exc
        try:
            _info, picture = decode_image(data, name, self._limits)
        except InvalidImage as exc:
            raise BadInput(
                f"{name} of the training snapshot cannot be decoded: {exc.reason}; "
                "remove it from the dataset (or import it again) and retrain"
            ) from exc
        return picture

    def keep_plain(self, i: int, plain: NDArray[np.uint8]) -> None:
        self._plain[i] = plain

    def plain(self, i: int) -> NDArray[np.uint8]:
        """The plain model input of example ``i`` (what serving computes)."""
        if i not in self._plain:
            self._plain[i] = model_input(self.picture(i), self.size)
        return self._plain[i]

    def retain(self, keep: Collection[int]) -> None:
        """Forget the plain inputs of every example not in ``keep`` (bounds memory)."""
        self._plain = {i: v for i, v in self._plain.items() if i in keep}
