"""The model package: written by a real torch model from real photos, checked on the way out and
on the way in; a tampered, incomplete or inconsistent package is refused naming the file."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from tagtrain.errors import Conflict, PackageError, UnsafeArchive
from tagtrain.package import (
    GOLDEN,
    LABELS,
    MANIFEST,
    MODEL_FP32,
    MODEL_INT8,
    PACKAGE_FILES,
    Manifest,
    extract_package,
    read_package,
    zip_package,
)
from tagtrain.package.read import parse_manifest
from tagtrain.package.write import torch_probabilities
from tests.packages import (
    CLASSES,
    LITE0,
    N_CALIBRATION,
    N_CHECK,
    TINY,
    Lite0Classifier,
    TinyNet,
    built,
    photo_inputs,
    write_tiny,
)

LITE0_GROUP = pytest.mark.xdist_group("lite0-packages")  # build them once, in one worker


@pytest.fixture
def tiny(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    """A private copy of the tiny single-label package, free to damage."""
    return Path(shutil.copytree(built("tiny", "single_label", tmp_path_factory), tmp_path / "p"))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _flip_byte(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def _manifest(path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((path / MANIFEST).read_text())
    return data


def _write_manifest(path: Path, data: dict[str, object]) -> None:
    (path / MANIFEST).write_text(json.dumps(data))


# -- what gets written -------------------------------------------------------------------------


def test_writes_every_file_with_its_sha256(tiny: Path) -> None:
    assert sorted(p.name for p in tiny.iterdir()) == sorted([*PACKAGE_FILES, MANIFEST])
    data = _manifest(tiny)
    assert data["sha256"] == {name: _sha(tiny / name) for name in PACKAGE_FILES}
    assert (tiny / LABELS).read_text() == "".join(f"{c}\n" for c in CLASSES)
    assert not list(tiny.parent.glob(".*")), "no staging folder is left behind"


def test_manifest_fields_are_the_designed_ones(tiny: Path) -> None:
    data = _manifest(tiny)
    assert list(data) == [
        "format_version", "name", "version", "task", "labels", "input", "output", "thresholds",
        "metrics", "dataset", "backbone", "created_at", "sha256",
    ]  # fmt: skip
    assert data["format_version"] == 1
    assert (data["name"], data["version"], data["task"]) == ("tiny-trash", 1, "single_label")
    assert data["labels"] == CLASSES
    assert data["input"] == {
        "name": "image", "dtype": "uint8", "layout": "NHWC", "height": TINY, "width": TINY,
        "resize": "stretch-bilinear", "color": "RGB",
    }  # fmt: skip
    assert data["output"] == {"name": "probability", "activation": "softmax"}
    assert data["thresholds"] == {"default": 0.0, "per_label": {}}
    assert data["metrics"] == {"accuracy": 0.5, "int8_top1_agreement": 1.0}
    assert data["dataset"] == {
        "name": "trashnet",
        "snapshot": 7,
        "counts": {"train": 24, "test": 24},
    }
    assert data["backbone"] == "tiny-test-net"
    assert str(data["created_at"]).endswith("Z")


def test_golden_holds_torch_and_int8_probabilities(tiny: Path) -> None:
    package = read_package(tiny)
    golden = package.golden()
    assert golden.image.dtype == np.uint8 and golden.image.shape == (4, TINY, TINY, 3)
    assert np.array_equal(golden.image, photo_inputs(24, TINY)[12:16])
    want = torch_probabilities(TinyNet(len(CLASSES), "single_label"), golden.image)
    assert np.array_equal(golden.probability, want)  # what the torch graph gave, bit for bit
    assert golden.probability_int8.shape == want.shape
    session = ort.InferenceSession(str(tiny / MODEL_INT8), providers=["CPUExecutionProvider"])
    int8 = session.run(None, {"image": golden.image})[0]
    assert np.abs(int8 - golden.probability_int8).max() < 1e-6


def test_both_models_pass_the_checker_with_package_tensors(tiny: Path) -> None:
    for name in (MODEL_FP32, MODEL_INT8):
        onnx.checker.check_model(str(tiny / name), full_check=True)
        session = ort.InferenceSession(str(tiny / name), providers=["CPUExecutionProvider"])
        (inp,), (out,) = session.get_inputs(), session.get_outputs()
        assert (inp.name, inp.type, inp.shape[1:]) == ("image", "tensor(uint8)", [TINY, TINY, 3])
        assert (out.name, out.type, out.shape[1:]) == ("probability", "tensor(float)", [6])
        assert not isinstance(inp.shape[0], int), "the batch axis is dynamic"
    int8 = onnx.load(str(tiny / MODEL_INT8))
    assert any(n.op_type == "QuantizeLinear" for n in int8.graph.node)


def test_multi_label_thresholds_reach_the_manifest(tmp_path: Path) -> None:
    thresholds = {"default": 0.6, "per_label": {"glass": 0.3, "trash": 0.8}}
    manifest = write_tiny(tmp_path / "m", "multi_label", thresholds=thresholds)
    assert manifest.task == "multi_label" and manifest.output.activation == "sigmoid"
    assert manifest.threshold_vector() == [0.6, 0.3, 0.6, 0.6, 0.6, 0.8]
    assert read_package(tmp_path / "m").manifest == manifest
    # a plain {label: threshold} mapping works too; unlisted labels take the task's default
    plain = write_tiny(tmp_path / "p", "multi_label", thresholds={"metal": 0.25})
    assert plain.threshold("metal") == 0.25 and plain.threshold("paper") == 0.5


def test_task_aliases_numpy_metrics_and_default_single_threshold(tmp_path: Path) -> None:
    metrics = {"accuracy": np.float64(0.75), "confusion": np.eye(2, dtype=np.int64)}
    manifest = write_tiny(tmp_path / "s", task="single", metrics=metrics)
    assert manifest.task == "single_label" and manifest.thresholds.default == 0.0
    assert _manifest(tmp_path / "s")["metrics"] == {
        "accuracy": 0.75, "confusion": [[1, 0], [0, 1]], "int8_top1_agreement": 1.0,
    }  # fmt: skip


# -- what the writer refuses -------------------------------------------------------------------


def test_refuses_a_model_without_softmax(tmp_path: Path) -> None:
    class Logits(TinyNet):
        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return torch.log(super().forward(image))

    with pytest.raises(PackageError, match="softmax"):
        write_tiny(tmp_path / "out", model=Logits(6, "single_label"))
    assert not (tmp_path / "out").exists() and not list(tmp_path.iterdir())


def test_refuses_wrong_label_count_and_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match=r"\(N, 5\)"):
        write_tiny(tmp_path / "out", labels=CLASSES[:5])
    floats = photo_inputs(24, TINY).astype(np.float32)
    with pytest.raises(PackageError, match=r"golden: is float32 .* expected uint8"):
        write_tiny(tmp_path / "out", golden=floats)
    with pytest.raises(PackageError, match=r"calibration: .*\(N, 32, 32, 3\)"):
        write_tiny(tmp_path / "out", calibration=photo_inputs(4, 64))
    with pytest.raises(PackageError, match="labels must be distinct"):
        write_tiny(tmp_path / "out", labels=[*CLASSES[:5], "glass"])
    with pytest.raises(PackageError, match="unknown labels: wood"):
        write_tiny(tmp_path / "out", thresholds={"default": 0.1, "per_label": {"wood": 0.3}})
    assert not list(tmp_path.iterdir())


def test_never_overwrites_unless_told(tiny: Path) -> None:
    before = _sha(tiny / MODEL_FP32)
    with pytest.raises(Conflict, match="already exists"):
        write_tiny(tiny)
    assert _sha(tiny / MODEL_FP32) == before
    manifest = write_tiny(tiny, name="again", overwrite=True)
    assert manifest.name == "again" and read_package(tiny).manifest.name == "again"
    assert not list(tiny.parent.glob(".*"))


def test_a_failed_write_leaves_the_old_package_untouched(tiny: Path) -> None:
    before = {p.name: _sha(p) for p in tiny.iterdir()}
    with pytest.raises(PackageError):
        write_tiny(tiny, overwrite=True, golden=photo_inputs(4, 64))
    assert {p.name: _sha(p) for p in tiny.iterdir()} == before


def test_an_empty_folder_is_a_fine_target(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    write_tiny(tmp_path / "empty")
    read_package(tmp_path / "empty")


# -- what the reader refuses -------------------------------------------------------------------


@pytest.mark.parametrize("name", [MODEL_FP32, MODEL_INT8, LABELS, GOLDEN])
def test_one_changed_byte_is_refused_naming_the_file(tiny: Path, name: str) -> None:
    _flip_byte(tiny / name, (tiny / name).stat().st_size // 2)
    with pytest.raises(PackageError, match=rf"{name}: sha256 .* does not match") as info:
        read_package(tiny)
    assert info.value.name == str(tiny / name) and info.value.status == 422


def test_a_missing_file_is_named(tiny: Path) -> None:
    (tiny / MODEL_INT8).unlink()
    with pytest.raises(PackageError, match=rf"{MODEL_INT8}: is missing"):
        read_package(tiny)


def test_manifest_problems_are_one_sentence(tiny: Path) -> None:
    good = _manifest(tiny)
    (tiny / MANIFEST).write_text("{not json")
    with pytest.raises(PackageError, match=r"manifest.json: is not valid JSON"):
        read_package(tiny)
    _write_manifest(tiny, {**good, "task": "both"})
    with pytest.raises(PackageError, match=r"manifest.json: invalid manifest at task"):
        read_package(tiny)
    _write_manifest(tiny, {**good, "format_version": 2})
    with pytest.raises(PackageError, match="newer than this tagtrain reads"):
        read_package(tiny)
    sha = dict(good["sha256"])  # type: ignore[call-overload]
    del sha[GOLDEN]
    _write_manifest(tiny, {**good, "sha256": sha})
    with pytest.raises(PackageError, match=f"records no sha256 for {GOLDEN}"):
        read_package(tiny)
    _write_manifest(tiny, {**good, "sha256": {**sha, GOLDEN: "../etc/passwd"}})
    with pytest.raises(PackageError, match="not a lowercase hex sha256"):
        read_package(tiny)
    with pytest.raises(PackageError, match="not a model package"):
        read_package(tiny / "nowhere")


def test_labels_must_match_the_manifest(tiny: Path) -> None:
    data = _manifest(tiny)
    (tiny / LABELS).write_text("".join(f"{c}\n" for c in reversed(CLASSES)))
    data["sha256"] = {**data["sha256"], LABELS: _sha(tiny / LABELS)}  # type: ignore[dict-item]
    _write_manifest(tiny, data)
    with pytest.raises(PackageError, match=rf"{LABELS}: does not list the 6 labels"):
        read_package(tiny)


def test_manifest_model_validates_consistency() -> None:
    good = {
        "name": "m", "version": 1, "task": "multi_label", "labels": ["a"],
        "input": {"height": 8, "width": 8}, "output": {"activation": "sigmoid"},
        "thresholds": {"default": 0.5}, "dataset": {"name": "d"}, "backbone": "b",
        "created_at": "2026-01-01T00:00:00Z",
    }  # fmt: skip
    assert isinstance(parse_manifest(good), Manifest)
    for change, message in [
        ({"output": {"activation": "softmax"}}, "activation is sigmoid"),
        ({"task": "single_label", "output": {"activation": "softmax"}}, "at least 2 labels"),
        ({"labels": ["a", " b"]}, "surrounding spaces"),
        ({"labels": ["a", "b\nc"]}, "line break"),
        ({"thresholds": {"default": 1.5}}, "thresholds.default"),
        ({"thresholds": {"default": 0.5, "per_label": {"a": -1}}}, r"lie in \[0, 1\]"),
        ({"created_at": "2026-01-01T00:00:00"}, "time zone"),
        ({"input": {"height": 8, "width": 8, "layout": "NCHW"}}, "input.layout"),
        ({"colour": "RGB"}, "colour"),
    ]:
        with pytest.raises(PackageError, match=message):
            parse_manifest({**good, **change})


# -- the .zip ----------------------------------------------------------------------------------


def test_zip_round_trip(tiny: Path, tmp_path: Path) -> None:
    data = zip_package(tiny)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == sorted([*PACKAGE_FILES, MANIFEST])
    package = extract_package(data, tmp_path / "copy")
    assert package.manifest == read_package(tiny).manifest
    for name in [*PACKAGE_FILES, MANIFEST]:
        assert _sha(tmp_path / "copy" / name) == _sha(tiny / name)
    (tmp_path / "p.zip").write_bytes(data)
    assert extract_package(tmp_path / "p.zip", tmp_path / "from-file").manifest.name == "tiny-trash"
    with pytest.raises(PackageError, match="already exists"):
        extract_package(data, tmp_path / "copy")


def test_zip_refuses_a_tampered_folder_and_unsafe_archives(tiny: Path, tmp_path: Path) -> None:
    good = zip_package(tiny)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../evil.txt", "x")
        archive.writestr(MANIFEST, "{}")
    with pytest.raises(UnsafeArchive, match="evil"):
        extract_package(buffer.getvalue(), tmp_path / "evil")
    with pytest.raises(PackageError, match="not a zip archive"):
        extract_package(b"not a zip", tmp_path / "bad")
    # a changed byte inside the archive: unpacked, verified, refused, nothing left behind
    broken = bytearray(good)
    with zipfile.ZipFile(io.BytesIO(good)) as archive:
        info = archive.getinfo(MODEL_FP32)
    broken[info.header_offset + 30 + len(info.filename) + info.compress_size // 2] ^= 1
    with pytest.raises(PackageError, match=MODEL_FP32):
        extract_package(bytes(broken), tmp_path / "broken")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]  # only the fixture's copy
    _flip_byte(tiny / LABELS, 0)
    with pytest.raises(PackageError, match=LABELS):
        zip_package(tiny)


# -- the real backbone (slow: export + quantisation of EfficientNet-Lite0) ---------------------


@LITE0_GROUP
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["single_label", "multi_label"])
def test_lite0_package_parity_and_int8_agreement(
    tmp_path_factory: pytest.TempPathFactory, kind: str
) -> None:
    root = built("lite0", kind, tmp_path_factory)  # type: ignore[arg-type]
    package = read_package(root)
    manifest = package.manifest
    assert manifest.backbone == "efficientnet-lite0" and manifest.size == (LITE0, LITE0)
    assert manifest.output.activation == ("softmax" if kind == "single_label" else "sigmoid")

    photos = photo_inputs(N_CALIBRATION + N_CHECK, LITE0)
    check = photos[N_CALIBRATION:]
    model = Lite0Classifier(photos, len(CLASSES), kind)  # type: ignore[arg-type]
    golden = package.golden()
    assert np.array_equal(golden.image, check[:6])
    assert np.abs(golden.probability - torch_probabilities(model, golden.image)).max() < 1e-5

    fp32 = ort.InferenceSession(str(root / MODEL_FP32), providers=["CPUExecutionProvider"])
    int8 = ort.InferenceSession(str(root / MODEL_INT8), providers=["CPUExecutionProvider"])
    assert np.abs(fp32.run(None, {"image": golden.image})[0] - golden.probability).max() <= 1e-4
    for name in (MODEL_FP32, MODEL_INT8):  # TF-style pads folded into their convolutions
        ops = {node.op_type for node in onnx.load(str(root / name)).graph.node}
        assert "Pad" not in ops, (name, ops)
    p32 = np.concatenate([fp32.run(None, {"image": check[i : i + 40]})[0] for i in (0, 40, 80)])
    p8 = np.concatenate([int8.run(None, {"image": check[i : i + 40]})[0] for i in (0, 40, 80)])
    agreement = float((p32.argmax(1) == p8.argmax(1)).mean())
    assert agreement >= 0.99
    assert manifest.metrics["int8_top1_agreement"] == pytest.approx(agreement, abs=1e-4)
    assert np.abs(p32 - p8).mean() < 0.02  # close in value too, not only in ranking
    assert (root / MODEL_INT8).stat().st_size < (root / MODEL_FP32).stat().st_size / 2


def test_a_zero_pad_before_a_conv_folds_into_its_pads() -> None:
    """The graph clean-up on a hand-made graph: Pad(bottom/right 1) -> Conv(pads 0) becomes one
    Conv with pads [0, 0, 1, 1] and the same output; a Pad with a non-zero value stays."""
    from onnx import TensorProto, helper, numpy_helper

    from tagtrain.package.graph import fold_pads_into_convs

    weight = np.random.default_rng(0).normal(size=(4, 3, 3, 3)).astype(np.float32)

    def graph(pad_value: float) -> onnx.ModelProto:
        nodes = [
            helper.make_node("Pad", ["x", "pads", "value"], ["padded"], mode="constant"),
            helper.make_node("Conv", ["padded", "w"], ["y"], strides=[2, 2]),
        ]
        inits = [
            numpy_helper.from_array(np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64), "pads"),
            numpy_helper.from_array(np.array(pad_value, np.float32), "value"),
            numpy_helper.from_array(weight, "w"),
        ]
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 4])
        g = helper.make_graph(nodes, "g", [x], [y], inits)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])

    x = np.random.default_rng(1).normal(size=(1, 3, 8, 8)).astype(np.float32)

    def run_model(model: onnx.ModelProto) -> np.ndarray:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return np.asarray(sess.run(None, {"x": x})[0])

    model = graph(0.0)
    want = run_model(model)
    assert fold_pads_into_convs(model) == 1
    assert [n.op_type for n in model.graph.node] == ["Conv"]
    assert list(next(a for a in model.graph.node[0].attribute if a.name == "pads").ints) == [
        0,
        0,
        1,
        1,
    ]
    np.testing.assert_allclose(run_model(model), want, rtol=0, atol=1e-6)
    kept = graph(5.0)
    assert fold_pads_into_convs(kept) == 0
