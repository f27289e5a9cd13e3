"""check_request: the minimums refused with clear messages, the warnings a job shows; the
training settings checked as bad input; augmentation views reproducible and shaped right."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tagtrain.errors import BadInput
from tagtrain.media import model_input
from tagtrain.train.augment import AugmentConfig, augment, make_view, view_rng
from tagtrain.train.config import TrainConfig
from tagtrain.train.examples import UNKNOWN, Example, TrainRequest, check_request, encode
from tests.conftest import trashnet_photos


def _examples(
    counts: dict[str, int], *, extra: list[tuple[str, ...]] | None = None
) -> tuple[Example, ...]:
    tags = [(label,) for label, n in counts.items() for _ in range(n)] + (extra or [])
    return tuple(Example(i + 1, f"{i:064x}", t) for i, t in enumerate(tags))


def _single(counts: dict[str, int], **kw: list[tuple[str, ...]]) -> TrainRequest:
    return TrainRequest("single_label", tuple(counts), _examples(counts, **kw))


def test_a_good_request_has_no_warnings() -> None:
    assert check_request(_single({"cat": 12, "dog": 15})) == []


def test_below_the_minimum_per_label_is_refused_naming_the_label() -> None:
    with pytest.raises(BadInput, match=r"'dog' has 4.*at least 10"):
        check_request(_single({"cat": 12, "dog": 4}))


def test_fewer_than_two_labels_is_refused() -> None:
    with pytest.raises(BadInput, match="at least 2 labels"):
        check_request(_single({"cat": 30}))


def test_labels_absent_from_the_dataset_are_named() -> None:
    request = TrainRequest(
        "multi_label", ("cat", "dog", "emu", "owl"), _examples({"cat": 12, "dog": 12})
    )
    with pytest.raises(BadInput, match=r"labels 'emu', 'owl'"):
        check_request(request)


def test_repeated_labels_ids_and_reserved_unknown_are_refused() -> None:
    with pytest.raises(BadInput, match="more than once: cat"):
        check_request(TrainRequest("single_label", ("cat", "cat"), _examples({"cat": 20})))
    examples = _examples({"cat": 12, "dog": 12})
    with pytest.raises(BadInput, match="image ids appear more than once: 1"):
        check_request(TrainRequest("single_label", ("cat", "dog"), (*examples, examples[0])))
    with pytest.raises(BadInput, match="UNKNOWN is reserved"):
        check_request(_single({"cat": 12, UNKNOWN: 12}))
    with pytest.raises(BadInput, match="task must be"):
        check_request(TrainRequest("regression", ("a", "b"), examples))  # type: ignore[arg-type]


def test_imbalance_is_a_warning() -> None:
    warnings = check_request(_single({"cat": 40, "dog": 12}))
    assert len(warnings) == 1
    assert (
        "imbalanced" in warnings[0]
        and "'cat' has 40" in warnings[0]
        and "'dog' only 12" in warnings[0]
    )


def test_single_label_leaves_out_ambiguous_and_too_few_unlabeled_images() -> None:
    request = _single({"cat": 12, "dog": 12}, extra=[("cat", "dog")] * 3 + [("other",)] * 4)
    warnings = check_request(request)
    assert any("3 image(s) carry more than one" in w for w in warnings)
    assert any("4 image(s) carry none of the labels" in w for w in warnings)
    data = encode(request)
    assert data.classes == ("cat", "dog") and len(data.examples) == 24


def test_enough_unlabeled_images_become_unknown() -> None:
    request = _single({"cat": 12, "dog": 12}, extra=[()] * 11)
    assert check_request(request) == []
    data = encode(request)
    assert data.classes == ("cat", "dog", UNKNOWN)
    assert (np.asarray(data.targets) == 2).sum() == 11
    assert [ex.image_id for ex in data.examples] == sorted(ex.image_id for ex in data.examples)


def test_ambiguous_images_do_not_count_toward_the_minimum() -> None:
    with pytest.raises(BadInput, match="several of the labels do not count"):
        check_request(_single({"cat": 12, "dog": 8}, extra=[("cat", "dog")] * 5))


def test_multi_label_warns_about_few_negatives() -> None:
    examples = _examples({"a": 5}, extra=[("a", "b")] * 20)
    warnings = check_request(TrainRequest("multi_label", ("a", "b"), examples))
    assert any("few negatives for 'a': only 0" in w for w in warnings)
    data = encode(TrainRequest("multi_label", ("a", "b"), examples))
    assert np.asarray(data.targets).shape == (25, 2) and data.label_matrix().sum() == 45


def test_training_settings_are_checked_as_bad_input() -> None:
    with pytest.raises(BadInput, match="invalid training setting: val and test fractions"):
        TrainConfig(val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(BadInput, match="views must be at least 1"):
        TrainConfig(views=0)
    with pytest.raises(BadInput, match="crop_scale"):
        TrainConfig(augment={"crop_scale": [0.0, 1.0]})  # type: ignore[arg-type]
    with pytest.raises(BadInput, match="unexpected keyword"):
        TrainConfig(augment={"zoom": 2})  # type: ignore[arg-type]
    config = TrainConfig(augment={"hflip": 0.0, "crop_scale": [0.8, 1.0]}, head_c=[1.0, 10.0])  # type: ignore[arg-type]
    assert config.augment == AugmentConfig(hflip=0.0, crop_scale=(0.8, 1.0))
    assert config.head_c == (1.0, 10.0)


def test_views_are_reproducible_and_view_zero_is_the_serving_input() -> None:
    picture = Image.open(trashnet_photos(1)[0]).convert("RGB")
    config = AugmentConfig(hue=0.05)
    sha = "ab" * 32
    plain = make_view(picture, sha256=sha, view=0, config=config, size=224)
    assert np.array_equal(plain, model_input(picture, 224))
    one = make_view(picture, sha256=sha, view=1, config=config, size=224)
    again = make_view(picture, sha256=sha, view=1, config=config, size=224)
    two = make_view(picture, sha256=sha, view=2, config=config, size=224)
    assert one.shape == (224, 224, 3) and one.dtype == np.uint8
    assert np.array_equal(one, again)
    assert not np.array_equal(one, two) and not np.array_equal(one, plain)
    assert AugmentConfig().digest() != AugmentConfig(hflip=0.4).digest()


def test_augment_works_on_any_picture_shape_without_blank_corners() -> None:
    rng = np.random.default_rng(0)
    config = AugmentConfig(
        rotate_deg=20, crop_scale=(0.3, 1.0), brightness=0, contrast=0, saturation=0
    )
    for w, h in [(384, 512), (640, 427), (37, 601), (2, 2), (224, 224), (1000, 10)]:
        white = Image.new("RGB", (w, h), (255, 255, 255))
        for _ in range(20):
            out = augment(white, rng, config, 64)
            assert out.size == (64, 64)
            assert np.asarray(out).min() >= 250  # a blank (black) corner would show here
    with pytest.raises(ValueError, match="rotate_deg"):
        AugmentConfig(rotate_deg=90)
    assert view_rng("x", 1, config).random() == view_rng("x", 1, config).random()
