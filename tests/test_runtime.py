"""The runtime: loads only packages it can trust (sha256, tensor names, golden outputs) and
classifies real photos the way training saw them, with the manifest's thresholds everywhere."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

from tagtrain.errors import BadInput, InvalidImage, PackageError
from tagtrain.media import ImageLimits, decode_image, model_input
from tagtrain.package import GOLDEN, MANIFEST, MODEL_FP32, MODEL_INT8
from tagtrain.runtime import Classification, Classifier, decode_for_model, session_options
from tests import badfiles
from tests.conftest import trashnet_photos
from tests.packages import CLASSES, LITE0, TINY, built, rehash

PLAIN_SCRIPT = Path(__file__).with_name("plain_score.py")
LITE0_GROUP = pytest.mark.xdist_group("lite0-packages")  # the same worker as test_package's


@pytest.fixture
def tiny(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    """A private copy of the tiny single-label package, free to edit."""
    return Path(shutil.copytree(built("tiny", "single_label", tmp_path_factory), tmp_path / "p"))


@pytest.fixture(scope="module")
def photos() -> list[Path]:
    return trashnet_photos(6)


def _set_thresholds(package: Path, thresholds: dict[str, object]) -> None:
    data = json.loads((package / MANIFEST).read_text())
    data["thresholds"] = thresholds
    (package / MANIFEST).write_text(json.dumps(data))


def _reference(package: Path, photo: Path, model: str = MODEL_FP32) -> np.ndarray:
    """The probabilities by hand: the shared preprocessing and a bare session."""
    size = json.loads((package / MANIFEST).read_text())["input"]["height"]
    pixels = model_input(decode_image(photo.read_bytes(), photo.name, ImageLimits())[1], size)
    session = ort.InferenceSession(str(package / model), providers=["CPUExecutionProvider"])
    out: np.ndarray = session.run(None, {"image": pixels[None]})[0][0]
    return out


# -- loading ----------------------------------------------------------------------------------


def test_loads_and_classifies_a_real_jpeg(tiny: Path, photos: list[Path]) -> None:
    classifier = Classifier.load(tiny, draft=False)  # exactly as training decodes
    result = classifier.classify_bytes(photos[0].read_bytes(), 0)
    assert [type(c) for c in result] == [Classification] * len(CLASSES)
    assert sorted(c.class_name for c in result) == CLASSES
    confidences = [c.confidence for c in result]
    assert confidences == sorted(confidences, reverse=True)
    assert sum(confidences) == pytest.approx(1.0, abs=1e-5)
    want = _reference(tiny, photos[0])
    assert {c.class_name: c.confidence for c in result} == pytest.approx(
        dict(zip(CLASSES, want.tolist(), strict=True)), abs=1e-6
    )
    assert classifier.labels == CLASSES and classifier.input_size == TINY
    # decoded at 1/8 scale in the DCT (32 px is all this model needs): nearly the same
    fast = Classifier.load(tiny).classify_bytes(photos[0].read_bytes(), 0)
    assert {c.class_name: c.confidence for c in fast} == pytest.approx(
        {c.class_name: c.confidence for c in result}, abs=0.01
    )


def test_int8_model_loads_and_stays_close(tiny: Path, photos: list[Path]) -> None:
    fp32 = Classifier.load(tiny, draft=False)
    int8 = Classifier.load(tiny, quantized=True, threads=1, draft=False)
    assert int8.quantized and not fp32.quantized
    data = photos[1].read_bytes()
    assert fp32.classify_bytes(data, 1)[0].class_name == int8.classify_bytes(data, 1)[0].class_name
    got = {c.class_name: c.confidence for c in int8.classify_bytes(data, 0)}
    assert got == pytest.approx(dict(zip(CLASSES, _reference(tiny, photos[1], MODEL_INT8).tolist(), strict=True)), abs=1e-6)  # fmt: skip


def test_a_tampered_model_is_refused_naming_it(tiny: Path) -> None:
    data = bytearray((tiny / MODEL_FP32).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tiny / MODEL_FP32).write_bytes(bytes(data))
    with pytest.raises(PackageError, match=rf"{MODEL_FP32}: sha256"):
        Classifier.load(tiny)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("input", r"has inputs 'pixels'; a tagtrain model has one input 'image'"),
        ("output", r"has outputs 'logits'; a tagtrain model has one output 'probability'"),
        ("batch", r"input is tensor\(uint8\) \[1, 32, 32, 3\]"),
    ],
)
def test_wrong_tensor_names_or_layout_are_refused(tiny: Path, where: str, message: str) -> None:
    model = onnx.load(str(tiny / MODEL_FP32))
    graph = model.graph
    if where == "input":
        old, new = "image", "pixels"
        graph.input[0].name = new
    elif where == "output":
        old, new = "probability", "logits"
        graph.output[0].name = new
    else:
        old = new = ""
        graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    for node in graph.node:
        node.input[:] = [new if i == old and old else i for i in node.input]
        node.output[:] = [new if o == old and old else o for o in node.output]
    onnx.save(model, str(tiny / MODEL_FP32))
    rehash(tiny, MODEL_FP32)
    with pytest.raises(PackageError, match=message) as info:
        Classifier.load(tiny)
    assert info.value.name == str(tiny / MODEL_FP32)


def test_golden_outputs_that_differ_are_refused(tiny: Path) -> None:
    with np.load(tiny / GOLDEN) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["probability"] = arrays["probability"] + np.float32(0.001)
    np.savez(tiny / GOLDEN, **arrays)
    rehash(tiny, GOLDEN)
    with pytest.raises(PackageError, match=r"golden.npz: model.onnx gives probabilities up to"):
        Classifier.load(tiny)
    Classifier.load(tiny, quantized=True)  # the int8 model's own golden outputs are untouched

    arrays["probability"] = arrays["probability"] - np.float32(0.001)
    arrays["probability_int8"] = arrays["probability_int8"] + np.float32(0.1)
    np.savez(tiny / GOLDEN, **arrays)
    rehash(tiny, GOLDEN)
    Classifier.load(tiny)
    with pytest.raises(PackageError, match=r"model\.int8\.onnx gives probabilities"):
        Classifier.load(tiny, quantized=True)


def test_a_model_that_onnxruntime_cannot_load_is_named(tiny: Path) -> None:
    (tiny / MODEL_INT8).write_bytes(b"not an onnx model")
    rehash(tiny, MODEL_INT8)
    with pytest.raises(PackageError, match=r"model.int8.onnx: onnxruntime cannot load it"):
        Classifier.load(tiny, quantized=True)


# -- classifying ------------------------------------------------------------------------------


def test_top_n(tiny: Path, photos: list[Path]) -> None:
    classifier = Classifier.load(tiny)
    data = photos[2].read_bytes()
    everything = classifier.classify_bytes(data, 0)
    assert classifier.classify_bytes(data, -3) == everything
    assert classifier.classify_bytes(data, 2) == everything[:2]
    assert classifier.classify_bytes(data, 1) == everything[:1]
    assert classifier.classify_bytes(data, 99) == everything


def test_thresholds_per_label_apply_in_every_view(tiny: Path, photos: list[Path]) -> None:
    data = photos[3].read_bytes()
    probs = dict(zip(CLASSES, _reference(tiny, photos[3]).tolist(), strict=True))
    best = max(probs, key=probs.__getitem__)
    cut = sorted(probs.values())[3]  # the three most likely labels are at or above it
    _set_thresholds(tiny, {"default": cut, "per_label": {best: 1.0}})
    classifier = Classifier.load(tiny, draft=False)
    want = sorted((lb for lb in CLASSES if probs[lb] >= cut and lb != best), key=probs.get)[::-1]
    assert len(want) == 2

    by_bytes = classifier.classify_bytes(data, 0)
    assert [c.class_name for c in by_bytes] == want
    assert classifier.classify_bytes(data, 1) == by_bytes[:1]
    assert classifier.classify_batch([data, data], 0) == [by_bytes, by_bytes]
    frame = np.asarray(decode_image(data, "f", ImageLimits())[1])
    assert classifier.classify_array(frame, 0) == by_bytes
    assert classifier.classify_image(Image.fromarray(frame), 0) == by_bytes
    row = classifier.probabilities(model_input(Image.fromarray(frame), TINY)[None])[0]
    assert classifier.top(row, 0) == by_bytes
    assert classifier.thresholds.tolist() == pytest.approx(
        [1.0 if lb == best else cut for lb in CLASSES]
    )


def test_classify_batch_matches_one_by_one(tiny: Path, photos: list[Path]) -> None:
    classifier = Classifier.load(tiny)
    images = [p.read_bytes() for p in photos]
    assert classifier.classify_batch(images, 3) == [classifier.classify_bytes(i, 3) for i in images]
    assert classifier.classify_batch([], 3) == []
    with pytest.raises(InvalidImage, match="image 2: not an image"):
        classifier.classify_batch([images[0], b"hello"], 3)
    with pytest.raises(InvalidImage, match=r"b\.jpg: the file is truncated"):
        classifier.classify_batch(
            [images[0], badfiles.truncated(images[1])], 3, names=["a", "b.jpg"]
        )


def test_classify_array_takes_frames_of_any_size(tiny: Path, photos: list[Path]) -> None:
    classifier = Classifier.load(tiny, draft=False)
    picture = decode_image(photos[4].read_bytes(), "p", ImageLimits())[1]
    frame = np.asarray(picture)
    assert frame.shape == (512, 384, 3)
    assert classifier.classify_array(frame, 0) == classifier.classify_bytes(
        photos[4].read_bytes(), 0
    )
    small = model_input(picture, TINY)
    assert classifier.classify_array(small, 0) == classifier.classify_array(frame, 0)
    for bad in (frame.astype(np.float32), frame[..., :2], frame[0], np.zeros((0, 4, 3), np.uint8)):
        with pytest.raises(BadInput, match=r"uint8 RGB \(height, width, 3\)"):
            classifier.classify_array(bad, 1)


def test_bad_bytes_are_invalid_images_even_on_the_fast_path(tiny: Path, photos: list[Path]) -> None:
    classifier = Classifier.load(tiny)
    big = Image.open(photos[0]).resize((1024, 768))
    jpeg = badfiles.encode(big, "JPEG", quality=90)
    cases = {
        b"": "empty",
        b"GIF89a nonsense": "corrupt|not an image",
        badfiles.truncated(jpeg): "truncated",
        badfiles.scrambled_jpeg(jpeg): "corrupt|truncated",
    }
    for data, message in cases.items():
        with pytest.raises(InvalidImage, match=message):
            classifier.classify_bytes(data, 1, name="upload.jpg")
    tight = Classifier.load(tiny, limits=ImageLimits(max_pixels=1000 * 700))
    with pytest.raises(InvalidImage, match="decompression bomb"):
        tight.classify_bytes(jpeg, 1)


def test_unusual_encodings_are_classified(tiny: Path) -> None:
    classifier = Classifier.load(tiny)
    for data in badfiles.accepted_bytes().values():
        assert len(classifier.classify_bytes(data[0], 0)) == len(CLASSES)


def test_infer_and_metadata_speak_the_ml_model_service(tiny: Path) -> None:
    classifier = Classifier.load(tiny)
    batch = np.stack(
        [model_input(Image.new("RGB", (50, 40), (i * 40, 90, 200)), TINY) for i in range(3)]
    )
    out = classifier.infer({"image": batch})
    assert list(out) == ["probability"]
    assert out["probability"].shape == (3, 6) and out["probability"].dtype == np.float32
    assert np.array_equal(out["probability"], classifier.probabilities(batch))
    assert classifier.probabilities(batch[:0]).shape == (0, 6)
    with pytest.raises(BadInput, match="one tensor named 'image'"):
        classifier.infer({"input": batch})
    with pytest.raises(BadInput, match=r"uint8 \(N, 32, 32, 3\)"):
        classifier.infer({"image": batch.astype(np.float32)})
    with pytest.raises(BadInput, match=r"uint8 \(N, 32, 32, 3\)"):
        classifier.infer({"image": batch[0]})

    meta = classifier.metadata()
    assert meta["name"] == "tiny-trash" and meta["type"] == "onnx_cpu"
    (inp,), (out_info,) = meta["input_info"], meta["output_info"]
    assert (inp["name"], inp["data_type"], inp["shape"]) == ("image", "uint8", [-1, 32, 32, 3])
    assert (out_info["name"], out_info["data_type"]) == ("probability", "float32")
    assert out_info["shape"] == [-1, 6] and out_info["extra"]["labels"] == CLASSES
    assert out_info["associated_files"][0]["name"] == "labels.txt"
    json.dumps(meta)  # JSON-ready as it is


def test_session_threads() -> None:
    assert session_options(3).intra_op_num_threads == 3
    assert 1 <= session_options().intra_op_num_threads <= 4
    assert session_options().inter_op_num_threads == 1
    spin = "session.intra_op.allow_spinning"
    assert session_options().get_session_config_entry(spin) == "0"
    assert session_options(spinning=True).get_session_config_entry(spin) == "1"


# -- preprocessing: the shared recipe, and the JPEG draft shortcut ----------------------------


def test_draft_decoding_only_kicks_in_for_large_jpegs(photos: list[Path]) -> None:
    limits = ImageLimits()
    data = photos[0].read_bytes()  # 384x512: cannot be halved and stay >= 224
    exact = model_input(decode_image(data, "p", limits)[1], 224)
    assert np.array_equal(decode_for_model(data, "p", size=224, limits=limits), exact)
    big = badfiles.encode(Image.open(photos[0]).resize((768, 1024)), "JPEG", quality=90)
    full = decode_for_model(big, "b", size=224, limits=limits, draft=False)
    fast = decode_for_model(big, "b", size=224, limits=limits)
    assert np.array_equal(full, model_input(decode_image(big, "b", limits)[1], 224))
    diff = np.abs(full.astype(int) - fast.astype(int))
    assert 0 < diff.mean() < 1.5, diff.mean()  # reduced in the DCT, then the same stretch
    png = badfiles.encode(Image.open(photos[0]).resize((768, 1024)), "PNG")
    png_fast = decode_for_model(png, "p", size=224, limits=limits)
    assert np.array_equal(
        png_fast, decode_for_model(png, "p", size=224, limits=limits, draft=False)
    )


def test_draft_decoding_keeps_exif_orientation() -> None:
    """Stored 1000x500 red|blue with EXIF orientation 6: shown 500x1000, red on top."""
    img = Image.new("RGB", (1000, 500), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 500, 500))
    exif = Image.Exif()
    exif[0x0112] = 6
    data = badfiles.encode(img, "JPEG", quality=95, exif=exif.tobytes())
    fast = decode_for_model(data, "r", size=224, limits=ImageLimits())
    full = decode_for_model(data, "r", size=224, limits=ImageLimits(), draft=False)
    for pixels in (fast, full):
        assert pixels[20, 112, 0] > 200 and pixels[20, 112, 2] < 60  # red on top
        assert pixels[200, 112, 2] > 200 and pixels[200, 112, 0] < 60  # blue below
    assert np.abs(fast.astype(int) - full.astype(int)).mean() < 1.5


def test_a_plain_onnxruntime_script_scores_the_same(tiny: Path, photos: list[Path]) -> None:
    _plain_script_agrees(tiny, photos, atol=1e-6)


def _plain_script_agrees(package: Path, photos: list[Path], *, atol: float) -> None:
    """``plain_score.py`` reads only manifest.json and labels.txt, imports no tagtrain."""
    source = PLAIN_SCRIPT.read_text()
    assert "tagtrain" not in source.split('"""', 2)[2]
    done = subprocess.run(
        [sys.executable, str(PLAIN_SCRIPT), str(package), *map(str, photos)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    classifier = Classifier.load(package, draft=False)
    for photo, line in zip(photos, lines, strict=True):
        got = {c.class_name: c.confidence for c in classifier.classify_bytes(photo.read_bytes(), 0)}
        assert line["file"] == str(photo)
        assert got == pytest.approx(line["probabilities"], abs=atol)


# -- the real backbone (slow) -----------------------------------------------------------------


@LITE0_GROUP
@pytest.mark.slow
def test_lite0_runtime_on_real_photos(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = built("lite0", "single_label", tmp_path_factory)
    fp32, int8 = Classifier.load(root), Classifier.load(root, quantized=True)
    assert fp32.input_size == LITE0
    photos = trashnet_photos(12)
    for photo in photos:
        data = photo.read_bytes()
        result = fp32.classify_bytes(data, 0)
        assert len(result) == 6 and sum(c.confidence for c in result) == pytest.approx(1, abs=1e-5)
        assert [c.confidence for c in result] == sorted(
            (c.confidence for c in result), reverse=True
        )
        assert int8.classify_bytes(data, 1)[0].class_name == result[0].class_name
    _plain_script_agrees(root, photos[:4], atol=1e-5)


@LITE0_GROUP
@pytest.mark.slow
def test_lite0_draft_decoding_changes_no_decision(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Large JPEGs (the trashnet photos at 2x, 768x1024) decoded at half scale in the DCT give
    the same top-1 as a full decode, and probabilities within a few hundredths."""
    classifier = Classifier.load(built("lite0", "single_label", tmp_path_factory))
    exact = Classifier.load(built("lite0", "single_label", tmp_path_factory), draft=False)
    diffs, same = [], 0
    photos = trashnet_photos(30)
    for photo in photos:
        big = Image.open(photo).resize((768, 1024), Image.Resampling.BICUBIC)
        data = badfiles.encode(big, "JPEG", quality=90)
        fast = {c.class_name: c.confidence for c in classifier.classify_bytes(data, 0)}
        full = {c.class_name: c.confidence for c in exact.classify_bytes(data, 0)}
        diffs.append(max(abs(fast[k] - full[k]) for k in CLASSES))
        same += max(fast, key=fast.__getitem__) == max(full, key=full.__getitem__)
    assert same == len(photos), same
    assert float(np.mean(diffs)) < 0.02 and max(diffs) < 0.1, (np.mean(diffs), max(diffs))
