"""The pretrained backbone: it names real photos, exports to ONNX with the package's uint8 NHWC
input and the same outputs, freezes what it is told to; and the shared model-input resize."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from tagtrain.errors import NotFound
from tagtrain.media import model_input, model_inputs
from tagtrain.train.backbone import (
    BACKBONES,
    DEFAULT_BACKBONE,
    Backbone,
    EfficientNetLite0,
    UInt8Normalize,
    get_backbone,
    lite0_weights_path,
)

CATS = {281, 282, 283, 285}  # tabby, tiger cat, Persian cat, Egyptian cat
COFFEE = {504, 967, 968}  # coffee mug, espresso, cup


@pytest.fixture(scope="module")
def pretrained() -> Backbone:
    return get_backbone().create()


def _photo(array: np.ndarray) -> np.ndarray:
    """A scikit-image photo through the same preprocessing as training and serving."""
    return model_input(Image.fromarray(array), get_backbone().input_size)


class _Exported(torch.nn.Module):
    """uint8 NHWC ``image`` -> (features, logits): the layout of the model package."""

    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.normalize = get_backbone().input_module()
        self.backbone = backbone

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.backbone.features_and_logits(self.normalize(image))


def test_pretrained_names_real_photos(pretrained: Backbone) -> None:
    batch = np.stack([_photo(data.chelsea()), _photo(data.coffee())])
    model = _Exported(pretrained).eval()
    with torch.inference_mode():
        features, logits = model(torch.from_numpy(batch))
    assert features.shape == (2, 1280)
    assert logits.shape == (2, 1000)
    top5 = logits.topk(5).indices.tolist()
    assert CATS & set(top5[0]), top5[0]
    assert COFFEE & set(top5[1]), top5[1]
    # Pinned from this implementation, to catch silent drift: symmetric instead of TF "SAME"
    # padding gives 0.698 / 0.864, PyTorch's BN eps 1e-5 instead of TF's 1e-3 gives 0.781 / 0.903.
    probs = logits.softmax(-1)
    assert probs[0, 285].item() == pytest.approx(0.791, abs=0.005)  # Egyptian cat
    assert probs[1, 967].item() == pytest.approx(0.899, abs=0.005)  # espresso


def test_weights_load_by_key_name() -> None:
    spec = get_backbone(DEFAULT_BACKBONE)
    state = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    model = spec.create(pretrained=False)
    assert set(model.state_dict()) == set(state)
    assert spec.input_size == 224 and spec.feature_dim == model.feature_dim == 1280
    assert spec.mean == (127.0,) * 3 and spec.std == (128.0,) * 3


def test_registry_names_unknown_backbones() -> None:
    assert DEFAULT_BACKBONE in BACKBONES
    with pytest.raises(NotFound, match="efficientnet-lite0"):
        get_backbone("resnet-9000")


def test_uint8_normalize_makes_nchw_float() -> None:
    x = torch.tensor([[[[0, 127, 255]]]], dtype=torch.uint8)  # (1, 1, 1, 3) NHWC
    y = UInt8Normalize((127.0,) * 3, (128.0,) * 3)(x)
    assert y.dtype == torch.float32 and y.shape == (1, 3, 1, 1)
    assert y.flatten().tolist() == [-127 / 128, 0.0, 1.0]


@pytest.mark.slow
def test_onnx_export_matches_torch(pretrained: Backbone, tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = _Exported(pretrained).eval()
    path = tmp_path / "backbone.onnx"
    example = torch.zeros((2, 224, 224, 3), dtype=torch.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation/folding notes
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=["image"],
            output_names=["features", "logits"],
            dynamic_axes={"image": {0: "batch"}, "features": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert (inp.name, inp.type, inp.shape[1:]) == ("image", "tensor(uint8)", [224, 224, 3])
    batch = np.stack([_photo(data.chelsea()), _photo(data.coffee()), _photo(data.astronaut())])
    features, logits = session.run(["features", "logits"], {"image": batch})
    with torch.inference_mode():
        want_features, want_logits = model(torch.from_numpy(batch))
    assert np.abs(features - want_features.numpy()).max() < 1e-4
    assert np.abs(logits - want_logits.numpy()).max() < 1e-4
    single = session.run(["logits"], {"image": batch[:1]})[0]
    assert np.abs(single - want_logits.numpy()[:1]).max() < 1e-4


def test_freeze_all_but_top_leaves_only_those_trainable() -> None:
    model = get_backbone().create(pretrained=False)
    assert isinstance(model, EfficientNetLite0)
    units = model.units()
    assert len(units) == 18  # stem, 16 blocks, head conv

    trainable = model.freeze_all_but_top(3)  # blocks 14, 15 and the head conv
    want = {
        id(p) for u in (model._blocks[14], model._blocks[15], units[-1]) for p in u.parameters()
    }
    assert {id(p) for p in trainable} == want
    assert {id(p) for p in model.parameters() if p.requires_grad} == want
    assert not model._fc.weight.requires_grad

    model.train()  # frozen batch norms stay in eval: their running statistics must not move
    frozen_bn, live_bn = model._blocks[13]._bn1, model._blocks[14]._bn1
    assert not frozen_bn.training and live_bn.training
    before = frozen_bn.running_mean.clone()
    model.forward_features(torch.randn(2, 3, 64, 64)).sum().backward()
    assert torch.equal(frozen_bn.running_mean, before)
    assert model._blocks[13]._project_conv.weight.grad is None
    assert model._blocks[14]._project_conv.weight.grad is not None

    assert model.freeze_all_but_top(0) == []
    assert not any(p.requires_grad for p in model.parameters())
    model.freeze_all_but_top(len(units))
    model.train()
    assert model._bn0.training and model._conv_stem.weight.requires_grad
    with pytest.raises(ValueError, match="between 0 and 18"):
        model.freeze_all_but_top(19)


def test_model_input_stretches_bilinear() -> None:
    wide = Image.new("RGB", (300, 100), (200, 30, 10))
    out = model_input(wide, 224)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    assert (out == [200, 30, 10]).all()  # stretched, not cropped or padded
    assert out.flags.writeable

    photo = Image.fromarray(data.chelsea())
    want = np.asarray(photo.resize((224, 224), Image.Resampling.BILINEAR))
    assert np.array_equal(model_input(photo, 224), want)

    batch = model_inputs([wide, photo], 224)
    assert batch.shape == (2, 224, 224, 3) and np.array_equal(batch[1], want)
    assert model_inputs([], 32).shape == (0, 32, 32, 3)


def test_model_input_refuses_non_rgb() -> None:
    with pytest.raises(ValueError, match="RGB"):
        model_input(Image.new("L", (8, 8)), 224)
    with pytest.raises(ValueError, match="positive"):
        model_input(Image.new("RGB", (8, 8)), 0)
