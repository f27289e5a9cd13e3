"""Score photos with a tagtrain model package using nothing but onnxruntime, numpy and Pillow.

    python plain_score.py PACKAGE_DIR IMAGE...

It reads only ``manifest.json`` and ``labels.txt`` (and runs ``model.onnx``), follows the
manifest's input recipe (EXIF orientation, RGB, stretch-resize bilinear to width x height, uint8
NHWC) and prints one JSON line per image: ``{"file": ..., "probabilities": {label: p}}``. The
tests run it beside :class:`tagtrain.runtime.Classifier` to show that a package needs no tagtrain.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps


def main(package: Path, images: list[Path]) -> None:
    manifest = json.loads((package / "manifest.json").read_text(encoding="utf-8"))
    labels = (package / "labels.txt").read_text(encoding="utf-8").splitlines()
    spec = manifest["input"]
    assert (spec["dtype"], spec["layout"], spec["color"]) == ("uint8", "NHWC", "RGB")
    assert spec["resize"] == "stretch-bilinear"
    session = ort.InferenceSession(str(package / "model.onnx"), providers=["CPUExecutionProvider"])
    for path in images:
        with Image.open(path) as img:
            rgb = ImageOps.exif_transpose(img).convert("RGB")
        rgb = rgb.resize((spec["width"], spec["height"]), Image.Resampling.BILINEAR)
        batch = np.asarray(rgb, dtype=np.uint8)[np.newaxis]
        (probs,) = session.run([manifest["output"]["name"]], {spec["name"]: batch})[0]
        scores = {label: float(p) for label, p in zip(labels, probs, strict=True)}
        print(json.dumps({"file": str(path), "probabilities": scores}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
