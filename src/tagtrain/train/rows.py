"""One training's cached features as the rows its heads are fitted and judged on.

A head trains on every view of its images (view 0 is the plain model input serving sees, views
1.. are augmented and weigh ``augmented_weight``) and is judged or scored on their plain views;
fine-tuning reads the stored trunk outputs instead of features.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from tagtrain.train.embeddings import EmbeddingCache, ViewKey, stack_features
from tagtrain.train.examples import Encoded

Array = NDArray[Any]
Index = NDArray[np.int64]


class FeatureRows:
    """Rows of ``features`` (filled by the training as views are extracted) for the examples of
    ``data``; ``views`` per image, augmented ones weighted ``augmented_weight``."""

    def __init__(
        self,
        data: Encoded,
        features: dict[ViewKey, Array],
        cache: EmbeddingCache,
        *,
        views: int,
        augmented_weight: float,
    ) -> None:
        self.data, self.features, self.cache = data, features, cache
        self.views, self.augmented_weight = views, augmented_weight
        self.targets = np.asarray(data.targets)

    def plain_keys(self, idx: Index) -> list[ViewKey]:
        return [ViewKey(self.data.examples[i].sha256, 0) for i in idx]

    def view_keys(self, idx: Index) -> list[ViewKey]:
        """Every view of ``idx``, view by view (all plain views first)."""
        return [ViewKey(self.data.examples[i].sha256, v) for v in range(self.views) for i in idx]

    def view_rows(self, idx: Index) -> tuple[Array, Array, Array]:
        """Features, targets and weights of every view of the images ``idx``."""
        weights = np.where(
            np.repeat(np.arange(self.views), idx.size) == 0, 1.0, self.augmented_weight
        )
        features = stack_features(self.view_keys(idx), self.features)
        return features, self.targets[np.tile(idx, self.views)], weights

    def plain_rows(self, idx: Index) -> tuple[Array, Array]:
        """Features and targets of the plain views of ``idx``."""
        return stack_features(self.plain_keys(idx), self.features), self.targets[idx]

    def trunks(self, keys: list[ViewKey]) -> torch.Tensor | None:
        """The stored trunk outputs of ``keys``, or None if any is missing from the cache."""
        arrays = [self.cache.load_trunk(k) for k in keys]
        if any(a is None for a in arrays):
            return None
        return torch.from_numpy(np.stack([a for a in arrays if a is not None]))
